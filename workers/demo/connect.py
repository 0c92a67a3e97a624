"""The demo business joins calsync the way a real one does: the Wix app is installed (calsync
learns of it from the signed AppInstalled webhook), the operator issues the site's API key, and
each staff member connects their calendar through calsync's API: Google and Outlook by OAuth
(consent, then the provider redirects to calsync's callback), CalDAV by credentials."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.auth import rotate_key
from models import Tenant
from models.db import session_scope
from sandbox.graph import trusting_session
from workers.demo.people import Staff
from workers.demo.world import STAFF_ZONE, DemoWorld

V2 = "/bookings/v2/external-calendars"
# How each demo calendar system is named in `GET providers`, as a Wix client would pick it.
PROVIDER_NAMES = {"google": "Google Calendar", "outlook": "Outlook or Office 365",
                  "caldav": "CalDAV"}  # fmt: skip


def forget(engine: Engine, instance_id: str) -> None:
    """The previous run's demo business: its sandboxes are gone with that run, so its
    connections could only fail. Removed with everything of it (the rows cascade)."""
    with session_scope(engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == instance_id))
        if tenant is not None:
            db.delete(tenant)


def install(world: DemoWorld, engine: Engine, timeout: float = 20.0) -> tuple[str, str]:
    """Install the app on a new site; once calsync has the tenant, its API key."""
    site = world.wix.install(world.wix_app.app_id, time_zone=STAFF_ZONE)
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(engine) as db:
            if db.scalar(select(Tenant.id).where(Tenant.wix_instance_id == site.instance_id)):
                key = rotate_key(db, site.instance_id)
                assert key is not None
                return site.instance_id, key
        if time.monotonic() > deadline:
            raise RuntimeError("calsync did not take the app's AppInstalled webhook")
        time.sleep(0.1)


class Connector:
    """Calls calsync's External Calendars API with the site's key."""

    def __init__(self, world: DemoWorld, api_base_url: str, api_key: str) -> None:
        self.world = world
        self.api = httpx.Client(base_url=api_base_url, trust_env=False, timeout=30,
                                headers={"Authorization": f"Bearer {api_key}"})  # fmt: skip
        self.done_url = f"{api_base_url}/status"
        listed = _checked(self.api.get(f"{V2}/providers")).json()["providers"]
        self.providers = {p["name"]: p for p in listed}
        self.consents = {"google": self._consent_google, "outlook": self._consent_microsoft}

    def connect(self, staff: Staff) -> str:
        """Connect the staff member's calendar the way its provider's listing says; returns
        the connection id."""
        provider = self.providers[PROVIDER_NAMES[staff.system]]
        if "OAUTH" in provider["features"]["connectMethods"]:
            return self._by_oauth(staff, provider["id"], self.consents[staff.system])
        return self._by_credentials(staff, provider["id"])

    def close(self) -> None:
        self.api.close()

    def _by_oauth(self, staff: Staff, provider_id: str, consent: Callable[[str], str]) -> str:
        body = {"scheduleId": staff.schedule_id, "providerId": provider_id,
                "redirectUrl": self.done_url}  # fmt: skip
        asked = _checked(self.api.post(f"{V2}/connections:connectByOAuth", json=body))
        back = self.api.get(consent(asked.json()["oauthUrl"]))  # the provider sends us back
        if back.status_code != 302:
            raise RuntimeError(f"the OAuth callback answered {back.status_code}: {back.text}")
        return parse_qs(urlsplit(back.headers["location"]).query)["connectionId"][0]

    def _by_credentials(self, staff: Staff, provider_id: str) -> str:
        user, password = self.world.caldav.credentials(self.world.caldav.username)
        body = {"scheduleId": staff.schedule_id, "providerId": provider_id,
                "email": user, "password": password, "serverUrl": self.world.caldav.base_url}
        made = _checked(self.api.post(f"{V2}/connections:connectByCredentials", json=body))
        connection_id = str(made.json()["connection"]["id"])
        self._export_to_first_calendar(connection_id)
        return connection_id

    def _export_to_first_calendar(self, connection_id: str) -> None:
        """A CalDAV connection exports nothing until told where: the staff member's calendar."""
        path = f"{V2}/connections/{connection_id}"
        listed = _checked(self.api.get(f"{path}/calendars")).json()["calendars"]
        writable = next(c["id"] for c in listed if not c.get("readOnly"))
        config = {"syncToCalendar": {"enabled": True, "calendar": {"id": writable}}}
        _checked(self.api.patch(f"{path}/sync-config", json={"syncConfig": config}))

    @staticmethod
    def _consent_google(url: str) -> str:
        """The person's browser at Google's consent page: where Google redirects it."""
        answer = httpx.get(url, follow_redirects=False, trust_env=False)
        return _redirect(answer.status_code, answer.headers.get("location"))

    def _consent_microsoft(self, url: str) -> str:
        with trusting_session(self.world.graph.tls) as browser:
            answer = browser.get(url, allow_redirects=False)
        return _redirect(answer.status_code, answer.headers.get("location"))


def _checked(answer: httpx.Response) -> httpx.Response:
    if answer.is_error:
        path = answer.request.url.path
        raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
    return answer


def _redirect(status: int, location: str | None) -> str:
    if status != 302 or not location:
        raise RuntimeError(f"the consent page answered {status}")
    return location
