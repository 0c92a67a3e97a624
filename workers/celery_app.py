"""The Celery app: binds the `shared_task`s of tasks/ to one configured app."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from config import Settings, get_settings
from config.celery import celery_config
from config.logging import configure_logging
from tasks import TASK_MODULES


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("calsync", include=TASK_MODULES)
    app.conf.update(celery_config(settings))
    app.set_default()
    return app


@setup_logging.connect
def _structured_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers.
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def __getattr__(name: str) -> Celery:
    # `celery -A workers.celery_app` looks up `app` lazily, so importing this module
    # (e.g. for type checks) does not require a configured broker.
    if name == "app":
        app = create_celery()
        globals()["app"] = app
        return app
    raise AttributeError(name)
