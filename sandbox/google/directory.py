"""Accounts, their calendars and who may do what with each (calendarList `accessRole`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .datetimes import zone
from .errors import forbidden, not_found
from .store import EventStore, Expansion

ROLES = ("freeBusyReader", "reader", "writer", "owner")


@dataclass
class Calendar:
    id: str
    summary: str
    time_zone: str
    description: str
    resource_id: str  # the opaque id push channels report for this calendar's events
    etag: str
    store: EventStore

    def resource(self) -> dict[str, Any]:
        body = {
            "kind": "calendar#calendar",
            "etag": self.etag,
            "id": self.id,
            "summary": self.summary,
            "timeZone": self.time_zone,
        }
        if self.description:
            body["description"] = self.description
        return body


@dataclass
class Account:
    email: str
    name: str
    primary_calendar_id: str
    roles: dict[str, str] = field(default_factory=dict)  # calendar id -> access role
    hidden: set[str] = field(default_factory=set)  # entries hidden from the list in the UI
    # Entries gone from the list (unsubscribed, or their calendar deleted), as last shown: the
    # list serves them with `deleted: true` to `showDeleted` and incremental requests.
    left: dict[str, dict[str, Any]] = field(default_factory=dict)


class Directory:
    def __init__(self, etags: Callable[[], str], expansion: Callable[[], Expansion]) -> None:
        self.accounts: dict[str, Account] = {}
        self.calendars: dict[str, Calendar] = {}
        self._etags = etags
        self._expansion = expansion

    def add_account(self, email: str, name: str, time_zone: str) -> Account:
        if email in self.accounts:
            return self.accounts[email]
        account = Account(email=email, name=name, primary_calendar_id=email)
        self.accounts[email] = account
        self.add_calendar(email, email, summary=email, time_zone=time_zone)
        return account

    def add_calendar(
        self,
        owner: str,
        calendar_id: str | None,
        summary: str,
        time_zone: str,
        description: str = "",
    ) -> Calendar:
        zone(time_zone)  # refuse unknown zones early
        account = self.account(owner)
        calendar_id = calendar_id or f"{secrets.token_hex(13)}@group.calendar.google.com"
        if calendar_id in self.calendars:
            raise ValueError(f"calendar {calendar_id!r} already exists")
        store = EventStore(calendar_id, time_zone, self._etags, self._expansion)
        calendar = Calendar(
            id=calendar_id,
            summary=summary,
            time_zone=time_zone,
            description=description,
            resource_id=secrets.token_urlsafe(20),
            etag=self._etags(),
            store=store,
        )
        self.calendars[calendar_id] = calendar
        account.roles[calendar_id] = "owner"
        account.left.pop(calendar_id, None)
        return calendar

    def rename(self, calendar_id: str, summary: str) -> None:
        """`calendars.patch` of the summary: every list entry shows it, with a new etag."""
        calendar = self.calendar(calendar_id)
        calendar.summary, calendar.etag = summary, self._etags()

    def hide(self, email: str, calendar_id: str, hidden: bool) -> None:
        """`calendarList.patch` of `hidden`: off the list unless `showHidden`, still usable."""
        account = self.account(email)
        if calendar_id not in account.roles:
            raise ValueError(f"{calendar_id!r} is not on {email}'s calendar list")
        if hidden:
            account.hidden.add(calendar_id)
        else:
            account.hidden.discard(calendar_id)

    def unsubscribe(self, email: str, calendar_id: str) -> None:
        """`calendarList.delete`: the calendar leaves the account's list (not the primary)."""
        account = self.account(email)
        if calendar_id == account.primary_calendar_id:
            raise ValueError("the primary calendar cannot leave its account's list")
        if calendar_id not in account.roles:
            raise ValueError(f"{calendar_id!r} is not on {email}'s calendar list")
        self._leave(account, calendar_id)

    def delete_calendar(self, calendar_id: str) -> None:
        """`calendars.delete` of a secondary calendar: gone from every list and every call."""
        self.calendar(calendar_id)
        if any(a.primary_calendar_id == calendar_id for a in self.accounts.values()):
            raise ValueError("a primary calendar cannot be deleted (only cleared)")
        for account in self.accounts.values():
            if calendar_id in account.roles:
                self._leave(account, calendar_id)
        del self.calendars[calendar_id]

    def _leave(self, account: Account, calendar_id: str) -> None:
        entry = self.list_entry(account, calendar_id)
        account.left[calendar_id] = {"kind": entry["kind"], "etag": self._etags(),
                                      "id": calendar_id, "deleted": True}  # fmt: skip
        del account.roles[calendar_id]
        account.hidden.discard(calendar_id)

    def calendar(self, calendar_id: str) -> Calendar:
        try:
            return self.calendars[calendar_id]
        except KeyError:
            raise ValueError(f"no calendar {calendar_id!r}") from None

    def share(self, calendar_id: str, email: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if calendar_id not in self.calendars:
            raise ValueError(f"no calendar {calendar_id!r}")
        account = self.account(email)
        account.roles[calendar_id] = role
        account.left.pop(calendar_id, None)

    def account(self, email: str) -> Account:
        try:
            return self.accounts[email]
        except KeyError:
            raise ValueError(f"no account {email!r}") from None

    def resolve(self, email: str, calendar_id: str) -> tuple[Calendar, str]:
        """The calendar `email` means by `calendar_id` ("primary" allowed) and their role on it."""
        account = self.accounts.get(email)
        if account is None:
            raise not_found()
        if calendar_id == "primary":
            calendar_id = account.primary_calendar_id
        role = account.roles.get(calendar_id)
        if role is None or calendar_id not in self.calendars:
            raise not_found()
        return self.calendars[calendar_id], role

    def calendar_list(self, email: str, *, show_hidden: bool = False, show_deleted: bool = False
                      ) -> list[dict[str, Any]]:  # fmt: skip
        """The account's entries; hidden ones with `show_hidden`, the ones that left the list
        (each as `deleted: true`) with `show_deleted`."""
        account = self.accounts.get(email)
        if account is None:
            return []
        entries = [
            self.list_entry(account, cid)
            for cid in account.roles
            if cid in self.calendars and (show_hidden or cid not in account.hidden)
        ]
        return entries + (list(account.left.values()) if show_deleted else [])

    def list_entry(self, account: Account, calendar_id: str) -> dict[str, Any]:
        calendar = self.calendars[calendar_id]
        entry: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "etag": calendar.etag,
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": account.roles[calendar_id],
            "defaultReminders": [],
            "selected": True,
        }
        if calendar.description:
            entry["description"] = calendar.description
        if calendar_id == account.primary_calendar_id:
            entry["primary"] = True
        if calendar_id in account.hidden:
            entry["hidden"] = True
        return entry


def require_writer(role: str) -> None:
    if role not in ("writer", "owner"):
        raise forbidden()


def role_at_least(role: str, minimum: str) -> bool:
    return ROLES.index(role) >= ROLES.index(minimum)
