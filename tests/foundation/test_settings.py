from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import Settings, SettingsError, load_settings
from models.crypto import new_key


def test_defaults_point_at_the_embedded_single_machine_setup(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.uses_embedded_broker
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve()}/calsync.db"
    assert settings.caldav_poll_interval == 120
    assert settings.reconcile_interval == 6 * 3600


def test_reads_prefixed_environment_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CALSYNC_API_PORT=9123\nCALSYNC_WIX_APP_ID=from-dotenv\n")
    monkeypatch.setenv("CALSYNC_WIX_APP_ID", "from-environment")
    settings = Settings()
    assert settings.api_port == 9123
    assert settings.wix_app_id == "from-environment"


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("database_url", "nonsense", "CALSYNC_DATABASE_URL"),
        ("database_url", "mysql://root@localhost/db", "CALSYNC_DATABASE_URL"),
        ("broker_url", "http://localhost", "CALSYNC_BROKER_URL"),
        ("encryption_keys", "not-a-key", "CALSYNC_ENCRYPTION_KEYS"),
        ("api_port", "99999", "CALSYNC_API_PORT"),
        ("public_base_url", "not a url", "CALSYNC_PUBLIC_BASE_URL"),
        ("flower_basic_auth", "no-colon", "CALSYNC_FLOWER_BASIC_AUTH"),
        ("log_level", "LOUD", "CALSYNC_LOG_LEVEL"),
        ("broker_visibility_timeout", "600", "CALSYNC_BROKER_VISIBILITY_TIMEOUT"),
    ],
)
def test_a_bad_value_names_its_variable(field: str, value: str, variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(**{field: value})
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}:")
    assert "\n" not in message


def test_several_encryption_keys_are_accepted_in_order() -> None:
    first, second = new_key(), new_key()
    settings = load_settings(encryption_keys=f"{first}, {second}")
    assert [k.get_secret_value() for k in settings.encryption_keys] == [first, second]


def test_secrets_do_not_show_in_repr() -> None:
    settings = load_settings(google_client_secret="s3cret-value", encryption_keys=new_key())
    assert "s3cret-value" not in repr(settings)


def test_calsync_up_stops_on_a_bad_setting_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers", "up"],
        env={"CALSYNC_DATABASE_URL": "nonsense", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "calsync: invalid setting CALSYNC_DATABASE_URL: "
        "not a database URL (expected e.g. postgresql://user@host/db)"
    ]
    assert "Traceback" not in result.stdout + result.stderr
