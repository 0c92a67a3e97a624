"""What a business is told when a connection breaks: which business, which staff calendar on
which system, what broke in words and what to do, as an email and as a webhook's JSON body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from models import BreakAlert, BreakReason, Connection, ExternalCalendar, Tenant
from providers import registry

# (what broke, what to do), by reason.
WORDS = {
    BreakReason.TOKEN_REVOKED: (
        "calsync may no longer use the calendar account: its access was revoked, or its "
        "password changed.",
        "Connect the calendar again with the same account; the connection keeps its settings.",
    ),
    BreakReason.EXTERNAL_CALENDAR_DELETED: (
        "A calendar that was synced no longer exists in the account.",
        "Choose another calendar in the connection's sync settings, or connect it again.",
    ),
    BreakReason.EXTERNAL_CALENDAR_CREATION_FAILED: (
        "calsync could not create the calendar it keeps the bookings in.",
        "Check that the account may create calendars and resync the connection, or choose an "
        "existing calendar for the bookings.",
    ),
    BreakReason.REFUSED: (
        "The calendar system refused calsync's requests for good (access denied).",
        "Check what the account allows calsync to do, then resync the connection.",
    ),
    BreakReason.REPEATED_FAILURES: (
        "Sync runs failed {failed} times in a row; calsync keeps trying.",
        "If the calendar system is down, nothing: syncing resumes by itself. Otherwise the "
        "connection's status (GET .../connections/{connection}/status) shows the last error.",
    ),
}


@dataclass(frozen=True)
class BreakNews:
    alert_id: str
    reason: BreakReason
    broken_at: datetime
    business: str
    instance_id: str
    connection_id: str
    connection_status: str
    provider_id: str
    provider_name: str
    account: str | None
    schedule_id: str
    calendars: list[str]
    failed_runs: int

    def words(self) -> tuple[str, str]:
        what, todo = WORDS[self.reason]
        return (what.format(failed=self.failed_runs),
                todo.format(connection=self.connection_id))  # fmt: skip


@dataclass(frozen=True)
class Recipients:
    """Where the news still has to go: None where it went already, or was never asked for."""

    email: str | None
    webhook_url: str | None
    webhook_secret: str | None


def read_news(db: Session, settings: Settings, alert_id: str
              ) -> tuple[BreakNews, Recipients] | None:  # fmt: skip
    alert = db.get(BreakAlert, alert_id)
    connection = None if alert is None else db.get(Connection, alert.connection_id)
    tenant = None if connection is None else db.get(Tenant, connection.tenant_id)
    if alert is None or connection is None or tenant is None:
        return None
    provider_id, provider_name = _system(settings, connection.provider)
    news = BreakNews(
        alert_id=alert.id, reason=alert.reason, broken_at=alert.broken_at,
        business=tenant.name or f"Wix site {tenant.wix_instance_id}",
        instance_id=tenant.wix_instance_id, connection_id=connection.id,
        connection_status=connection.status.value, provider_id=provider_id,
        provider_name=provider_name, account=connection.external_account_email,
        schedule_id=connection.schedule_id, calendars=_calendar_names(db, connection.id),
        failed_runs=connection.failed_runs,
    )  # fmt: skip
    webhook = tenant.alert_webhook_url if alert.webhook_sent_at is None else None
    return news, Recipients(
        email=tenant.alert_email if alert.emailed_at is None else None,
        webhook_url=webhook, webhook_secret=tenant.alert_webhook_secret if webhook else None,
    )  # fmt: skip


def _system(settings: Settings, provider: str) -> tuple[str, str]:
    """The system's id and name as the API lists them (a system since removed: its id)."""
    try:
        listing = registry.entry(provider, settings).listing
    except registry.UnknownProvider:
        return provider, provider
    return listing.provider_id, listing.name


def _calendar_names(db: Session, connection_id: str) -> list[str]:
    query = select(ExternalCalendar).where(ExternalCalendar.connection_id == connection_id,
                                           ExternalCalendar.synced)  # fmt: skip
    return sorted(c.name or c.remote_id for c in db.scalars(query))


def email_for(settings: Settings, news: BreakNews, to: str) -> EmailMessage:
    what, todo = news.words()
    who = news.account or f"schedule {news.schedule_id}"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = f"{news.business}: calendar sync with {news.provider_name} ({who}) broke"
    calendars = ", ".join(news.calendars) or "none"
    message.set_content(
        f"Hello,\n\ncalsync stopped keeping a staff calendar of {news.business} in sync.\n\n"
        f"Calendar system: {news.provider_name}\nAccount: {news.account or 'unknown'}\n"
        f"Calendars: {calendars}\nWix schedule: {news.schedule_id}\n"
        f"Connection: {news.connection_id}\nSince: {news.broken_at:%Y-%m-%d %H:%M} UTC\n\n"
        f"What happened: {what}\n\nWhat to do: {todo}\n\n"
        "You are told once about this: calsync writes again only if the connection breaks "
        "again after it has worked.\n"
    )
    return message


def webhook_body(news: BreakNews) -> dict[str, Any]:
    what, todo = news.words()
    return {
        "id": news.alert_id,
        "type": "connection.broken",
        "brokenDate": news.broken_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "reason": news.reason.value,
        "description": what,
        "action": todo,
        "business": {"name": news.business, "instanceId": news.instance_id},
        "connection": {
            "id": news.connection_id, "providerId": news.provider_id,
            "status": news.connection_status, "scheduleId": news.schedule_id,
            "externalAccountEmail": news.account, "calendars": news.calendars,
        },
    }  # fmt: skip
