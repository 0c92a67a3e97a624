"""The one place calsync reads its configuration: `CALSYNC_*` environment variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "CALSYNC_"
SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_BROKERS = ("redis", "rediss", "redis+socket", "amqp", "pyamqp", "memory")


class SettingsError(Exception):
    """A configuration value is unusable; the message names the variable."""


class Settings(BaseSettings):
    """Every setting calsync has. Unset URLs fall back to the embedded single-machine defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where `calsync up` keeps its SQLite file, embedded Redis and generated local secrets.
    data_dir: Path = Path(".calsync")
    database_url: str | None = None
    broker_url: str | None = None
    result_backend_url: str | None = None
    # Prefix for every broker key (Redis) or queue and exchange name (RabbitMQ), so several
    # deployments (or test runs) can share one Redis or one virtual host.
    broker_key_prefix: str = ""
    # Redis for locks, rate-limit buckets and the beat leader lock; defaults to a Redis broker.
    redis_url: str | None = None

    # Fernet keys, comma separated; the first encrypts, all decrypt (rotation).
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    public_base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # API processes sharing the port (webhook ingest scales with them).
    api_workers: int = Field(1, ge=1, le=64)

    flower_host: str = "127.0.0.1"
    flower_port: int = Field(5555, ge=1, le=65535)
    flower_basic_auth: SecretStr | None = None  # "user:password"
    # The status page's "user:password"; Flower's when unset; with neither, no status page.
    status_basic_auth: SecretStr | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # `auto`: text lines on a terminal, JSON lines otherwise (config/logging.py).
    log_format: Literal["auto", "json", "text"] = "auto"

    worker_concurrency: int = Field(2, ge=1, le=64)
    # Redis redelivers an unacked message after this many seconds; it must stay above any
    # countdown or retry delay the code uses and above the task time limit.
    broker_visibility_timeout: int = Field(3600, ge=5)
    task_time_limit: int = Field(900, ge=10)
    max_retry_delay: int = Field(600, ge=1)

    # One writer per calendar: the lock expires this long after the last sign of life, so a
    # killed worker's calendar is free again soon.
    calendar_lock_seconds: int = Field(60, ge=5)
    # A sync waits until notifications pause this long (bursts, echoes of our own writes), so
    # one run reads them all; but it never holds a change back longer than the max wait. A run
    # costs what it changes, so on a calendar that never pauses a short max wait buys low lag
    # for a few more runs.
    notification_debounce_seconds: float = Field(0.1, ge=0, le=30)
    notification_max_wait_seconds: float = Field(0.3, ge=0, le=300)
    # The largest request body any route or receiver reads; larger ones are answered 413.
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    # A change failing this many runs in a row is parked as a dead letter.
    dead_letter_after: int = Field(5, ge=1)
    # A connection whose runs failed this many times in a row is broken: its business is told
    # once (`tasks/alerts.py`) while it keeps trying; throttled runs do not count.
    alert_after_failed_runs: int = Field(5, ge=1)
    # The API's limit per tenant (a token bucket in Redis shared by all API processes): this
    # many requests a second on average, `burst` at once; 0 turns the limit off.
    api_rate_limit_per_second: float = Field(20.0, ge=0)
    api_rate_limit_burst: int = Field(100, ge=1)
    # Requests per second allowed per provider account (a token bucket shared by all workers).
    google_requests_per_second: float = Field(5.0, gt=0)
    microsoft_requests_per_second: float = Field(4.0, gt=0)
    caldav_requests_per_second: float = Field(5.0, gt=0)
    wix_requests_per_second: float = Field(20.0, gt=0)
    local_requests_per_second: float = Field(500.0, gt=0)
    # The local calendar store (sandbox/store) that stands in for Wix in tests and benchmarks.
    wix_local_store_url: str | None = None
    # The demo world's control (`calsync demo`), whose people the status page shows and moves.
    demo_control_url: str | None = None

    # Periodic work (seconds).
    dispatch_interval: int = Field(60, ge=5)
    reconcile_interval: int = Field(6 * 3600, ge=60)
    caldav_poll_interval: int = Field(120, ge=10)
    sync_window_past_days: int = Field(30, ge=0)
    sync_window_future_days: int = Field(365, ge=1)
    channel_renew_before: int = Field(24 * 3600, ge=60)
    inbox_sweep_after: int = Field(30, ge=5)
    inbox_retention_days: int = Field(7, ge=1)
    sync_run_retention_days: int = Field(30, ge=1)

    # Access tokens are refreshed by beat this long before they expire (seconds).
    token_refresh_before: int = Field(600, ge=60)

    # OAuth `state`: how long a consent link stays valid (seconds); single use.
    oauth_state_ttl: int = Field(900, ge=60, le=86400)

    # CalDAV and Apple iCloud.
    apple_caldav_url: AnyHttpUrl = AnyHttpUrl("https://caldav.icloud.com/")
    # Allow CalDAV servers on loopback and private networks (never cloud metadata addresses).
    caldav_allow_private: bool = False
    caldav_max_concurrent_requests: int = Field(4, ge=1, le=64)

    # SMTP for the approval emails of the sync-request flow (v1 API).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_from: str = "calsync@localhost"

    # Calendar systems beyond the built-in ones: `module:attribute` names of registry entries
    # (`providers.registry.ProviderEntry`), comma-separated.
    extra_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Wix app.
    wix_app_id: str = ""
    wix_app_secret: SecretStr = SecretStr("")
    wix_public_key: str = ""  # PEM; verifies the RS256 webhook JWTs
    wix_api_base_url: AnyHttpUrl = AnyHttpUrl("https://www.wixapis.com")

    # Google OAuth client and API endpoints.
    google_client_id: str = ""
    google_client_secret: SecretStr = SecretStr("")
    google_auth_url: AnyHttpUrl = AnyHttpUrl("https://accounts.google.com/o/oauth2/v2/auth")
    google_token_url: AnyHttpUrl = AnyHttpUrl("https://oauth2.googleapis.com/token")
    google_api_base_url: AnyHttpUrl = AnyHttpUrl("https://www.googleapis.com/calendar/v3/")

    # Microsoft identity platform and Graph.
    microsoft_client_id: str = ""
    microsoft_client_secret: SecretStr = SecretStr("")
    microsoft_authority_url: AnyHttpUrl = AnyHttpUrl("https://login.microsoftonline.com/common")
    microsoft_graph_base_url: AnyHttpUrl = AnyHttpUrl("https://graph.microsoft.com/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (expected e.g. postgresql://user@host/db)"
            ) from None
        if url.get_backend_name() not in SUPPORTED_DATABASES:
            raise ValueError(f"unsupported database {url.get_backend_name()!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("not a Redis URL (expected e.g. redis://host:6379/0)")
        return value

    @field_validator("broker_url", "result_backend_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_BROKERS:
            raise ValueError("not a broker URL (expected e.g. redis://host:6379/0)")
        return value

    @field_validator("encryption_keys", "extra_providers", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key.get_secret_value().encode())
            except ValueError:
                raise ValueError(
                    f"key #{position} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        return keys

    @field_validator("flower_basic_auth", "status_basic_auth")
    @classmethod
    def _basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("expected user:password")
        return value

    @model_validator(mode="after")
    def _visibility_above_waits(self) -> Settings:
        if self.broker_visibility_timeout <= self.task_time_limit + self.max_retry_delay:
            raise ValueError(
                "broker_visibility_timeout: must exceed task_time_limit + max_retry_delay, "
                "or waiting and running tasks are delivered twice"
            )
        return self

    # Derived values used by several processes.

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url is None

    def status_credentials(self) -> SecretStr | None:
        """`user:password` for the status page: its own, else Flower's (operators use both)."""
        return self.status_basic_auth or self.flower_basic_auth

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'calsync.db').resolve()}"

    def coordination_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        raise SettingsError(
            "invalid setting CALSYNC_REDIS_URL: required when the broker is not Redis"
        )

    def request_rate(self, quota: str) -> float:
        """Requests per second one account may make, by the quota its system falls under."""
        rates = {"google": self.google_requests_per_second,
                 "microsoft": self.microsoft_requests_per_second,
                 "caldav": self.caldav_requests_per_second, "wix": self.wix_requests_per_second,
                 "local": self.local_requests_per_second}  # fmt: skip
        return rates[quota]

    def webhook_url(self, provider: str) -> str:
        return f"{str(self.public_base_url).rstrip('/')}/webhooks/{provider}"


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable, e.g. `CALSYNC_DATABASE_URL: not a database URL`."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    message = str(first["msg"]).removeprefix("Value error, ")
    if not field:  # a check across fields names its variable first: "name: message"
        field, _, message = message.partition(": ")
    return f"invalid setting {ENV_PREFIX}{field.upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into a SettingsError with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
