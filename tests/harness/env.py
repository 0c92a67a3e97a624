"""Settings passed to subprocesses through the environment, as an operator would."""

from __future__ import annotations

import os

from pydantic import SecretStr

from config import Settings


def as_env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return ",".join(as_env_value(item) for item in value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see the same settings: every value that differs
    from its default, plus the resolved database URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    defaults = Settings.model_construct()
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None and value != getattr(defaults, name, None):
            env[f"CALSYNC_{name.upper()}"] = as_env_value(value)
    env["CALSYNC_DATABASE_URL"] = settings.resolved_database_url()
    return env
