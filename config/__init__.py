"""Configuration: settings from the environment, Celery configuration, beat schedule, logging."""

from config.settings import Settings, SettingsError, get_settings, load_settings

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]
