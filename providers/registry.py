"""Every calendar system calsync connects to, by provider id: all the rest of calsync needs.

An entry declares what the system can do (`Capabilities`), how the External Calendars API
shows it (`Listing`), and where its roles live: `<package>.account` (`open_account`),
`<package>.auth` (`OAUTH`, when it connects by OAuth), `<package>.push` (`RECEIVER`, when it
pushes). Those modules are imported on first use, so a worker that only meets Google
connections never loads the CalDAV or Graph clients.

A new calendar system is one package and one entry here. Entries outside the code base (a
plugin, or a test's own system) are named in `CALSYNC_EXTRA_PROVIDERS` as `module:attribute`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType

from config import Settings, get_settings
from providers.base import (
    AccountHooks,
    AccountSource,
    CalendarAccount,
    Capabilities,
    ConnectMethod,
)
from providers.oauth import OAuthFlow
from providers.push import PushReceiver


@dataclass(frozen=True)
class Listing:
    """How Wix's External Calendars API shows the system (`GET providers`).

    `provider_id` is Wix's id for the providers Wix itself offers; `calendar_type` one of Wix's
    types (GOOGLE, I_CAL, MICROSOFT, OTHER); `imports` and `exports` Wix's feature values for
    reading calendars and writing sessions; `listed` False keeps it off the list (the local
    store, connected by tests and the demo)."""

    provider_id: str
    name: str
    calendar_type: str
    imports: str
    exports: str
    requires_server_url: bool = False
    wix_builtin: bool = True
    listed: bool = True


@dataclass(frozen=True)
class ProviderEntry:
    """`quota`: which `CALSYNC_<quota>_REQUESTS_PER_SECOND` limits one account's calls."""

    id: str  # the connection's provider, and the tag its busy blocks carry in Wix
    capabilities: Capabilities
    listing: Listing
    package: str
    quota: str
    roles: Mapping[str, str] = field(default_factory=dict)  # role -> module, if not in package

    def role(self, name: str) -> ModuleType:
        return importlib.import_module(self.roles.get(name, f"{self.package}.{name}"))

    def open_account(self, settings: Settings, source: AccountSource,
                     hooks: AccountHooks | None = None) -> CalendarAccount:  # fmt: skip
        account: CalendarAccount = self.role("account").open_account(
            settings, source, hooks or AccountHooks()
        )
        return account

    @property
    def oauth(self) -> OAuthFlow | None:
        if self.capabilities.connect is not ConnectMethod.OAUTH:
            return None
        flow: OAuthFlow = self.role("auth").OAUTH
        return flow

    @property
    def receiver(self) -> PushReceiver | None:
        if not self.capabilities.push:
            return None
        receiver: PushReceiver = self.role("push").RECEIVER
        return receiver


class UnknownProvider(LookupError):
    pass


_OAUTH = ConnectMethod.OAUTH
_CREDENTIALS = ConnectMethod.CREDENTIALS
BUILT_IN = (
    ProviderEntry(
        "google",
        Capabilities(_OAUTH, push=True),
        Listing("6c533722-f1f9-4847-95c7-d4c4922ae9b0", "Google Calendar", "GOOGLE",
                "PRIMARY_CALENDAR_ONLY", "PRIMARY_CALENDAR_ONLY"),
        "providers.google",
        "google",
    ),
    ProviderEntry(
        "apple",
        Capabilities(_CREDENTIALS, dedicated_calendar=True),
        Listing("9f084ae8-b3a6-4eb6-a29d-bc682c04b5fc", "Apple Calendar", "I_CAL",
                "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR"),
        "providers.caldav",
        "caldav",
    ),
    ProviderEntry(
        "microsoft",
        Capabilities(_OAUTH, push=True, dedicated_calendar=True, primary_after_connect=True),
        Listing("ae0d26b4-7e04-4735-a15e-1b1acaba2f00", "Outlook or Office 365", "MICROSOFT",
                "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR"),
        "providers.microsoft",
        "microsoft",
    ),
    ProviderEntry(
        "caldav",
        Capabilities(_CREDENTIALS, dedicated_calendar=True),
        Listing("5b1c7a0e-2c6d-5e8f-9a31-4cda1dcaf001", "CalDAV", "OTHER",
                "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR", requires_server_url=True,
                wix_builtin=False),
        "providers.caldav",
        "caldav",
    ),
    ProviderEntry(
        "local",
        Capabilities(_CREDENTIALS, push=True, dedicated_calendar=True),
        Listing("5b1c7a0e-2c6d-5e8f-9a31-4cda1dcaf002", "calsync local store", "OTHER",
                "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR", requires_server_url=True,
                wix_builtin=False, listed=False),
        "providers.local",
        "local",
    ),
)  # fmt: skip


@cache
def _entries(extra: tuple[str, ...]) -> dict[str, ProviderEntry]:
    found = {entry.id: entry for entry in BUILT_IN}
    for spec in extra:
        module, _, attribute = spec.partition(":")
        plugged: ProviderEntry = getattr(importlib.import_module(module), attribute or "ENTRY")
        found[plugged.id] = plugged
    return found


def entries(settings: Settings | None = None) -> dict[str, ProviderEntry]:
    """Every calendar system, built in and plugged in, by provider id."""
    return _entries(tuple((settings or get_settings()).extra_providers))


def entry(provider: str, settings: Settings | None = None) -> ProviderEntry:
    found = entries(settings).get(str(provider))
    if found is None:
        raise UnknownProvider(f"no calendar system {provider!r}")
    return found


def by_listing_id(provider_id: str, settings: Settings | None = None) -> ProviderEntry | None:
    """The system Wix's External Calendars API names `provider_id`."""
    return next(
        (e for e in entries(settings).values() if e.listing.provider_id == provider_id), None
    )


def polled(settings: Settings | None = None) -> list[str]:
    """The systems without push, whose calendars beat polls."""
    return [e.id for e in entries(settings).values() if not e.capabilities.push]


def pushing(settings: Settings | None = None) -> list[str]:
    return [e.id for e in entries(settings).values() if e.capabilities.push]


def with_oauth(settings: Settings | None = None) -> list[str]:
    """The systems whose access tokens expire and are refreshed ahead of time."""
    return [e.id for e in entries(settings).values() if e.capabilities.connect is _OAUTH]
