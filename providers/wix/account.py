"""The Wix side: calsync as a Wix app, reading and writing staff schedules (docs/wix.md).

`WixApp` holds the app's credentials, one HTTP client and the app tokens of every instance
(tenant) it serves; `WixApp.schedule(...)` is one staff member's schedule behind
`CalendarProvider` (`calendar.WixSchedule`). Webhooks are verified by `push.verify_webhook`, a
pure function the API can call inside a request.

    app = WixApp.from_settings(settings, http)
    schedule = app.schedule(instance_id, schedule_id, window, provider_tag="google")"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from config.settings import Settings
from providers.base import BeforeRequest, SyncWindow
from providers.wix.calendar import WixSchedule
from providers.wix.http import (
    TOKEN_MARGIN,
    Clock,
    Credentials,
    TokenCache,
    WixInstance,
    system_clock,
)


@dataclass(frozen=True)
class ScheduleOwner:
    """Whom a schedule belongs to: the Wix user who may manage it (a staff member without a
    Wix account has none) and the schedule's name, which is the staff member's."""

    user_id: str | None
    name: str | None


def owner_of(schedule: dict[str, Any]) -> ScheduleOwner:
    """Read from a Calendar V3 schedule: its `permissions` (at most one) name the Wix user."""
    users = [p.get("identity", {}).get("wixUserId") for p in schedule.get("permissions") or ()
             if isinstance(p, dict) and isinstance(p.get("identity"), dict)]  # fmt: skip
    user = next((u for u in users if isinstance(u, str) and u), None)
    name = schedule.get("name")
    return ScheduleOwner(user, name if isinstance(name, str) and name else None)


def schedule_owner(api: WixInstance, schedule_id: str) -> ScheduleOwner:
    path = f"/calendar/v3/schedules/{quote(schedule_id, safe='')}"
    return owner_of(api.call("GET", path)["schedule"])


class WixApp:
    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        http: httpx.Client,
        before_request: BeforeRequest | None = None,
        *,
        clock: Clock = system_clock,
        token_margin: timedelta = TOKEN_MARGIN,
        tokens: TokenCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = Credentials(app_id, app_secret)
        self.http = http
        self.before_request = before_request or (lambda: None)
        self.clock = clock
        # Shared across WixApp objects (e.g. one per sync run, each with its own request hook)
        # so an instance's token is fetched once per process, not once per run.
        self.tokens = tokens or TokenCache(clock, token_margin)
        self._instances: dict[str, WixInstance] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.Client, before_request: BeforeRequest | None = None,
        tokens: TokenCache | None = None,
    ) -> WixApp:  # fmt: skip
        return cls(
            str(settings.wix_api_base_url), settings.wix_app_id,
            settings.wix_app_secret.get_secret_value(), http, before_request, tokens=tokens,
        )  # fmt: skip

    def instance(self, instance_id: str) -> WixInstance:
        """Calls on behalf of one installation; its token is shared by all its schedules."""
        with self._lock:
            found = self._instances.get(instance_id)
            if found is None:
                found = WixInstance(
                    self.base_url, self.credentials, instance_id, self.http, self.tokens,
                    lambda: self.before_request(),
                )  # fmt: skip
                self._instances[instance_id] = found
            return found

    def schedule(
        self,
        instance_id: str,
        schedule_id: str,
        window: SyncWindow,
        provider_tag: str | None = None,
        *,
        read_only: bool = False,
        page_size: int = 100,
        change_overlap: timedelta = timedelta(seconds=60),
    ) -> WixSchedule:
        return WixSchedule(
            self.instance(instance_id), schedule_id, window, provider_tag, clock=self.clock,
            read_only=read_only, page_size=page_size, change_overlap=change_overlap,
        )  # fmt: skip
