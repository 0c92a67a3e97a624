"""`GET providers`: the calendar systems calsync connects to, as Wix's External Calendars API
shows them, built from each system's registry entry (`providers.registry`).

Google, Apple and Microsoft keep the ids, names and calendar types of Wix's built-in providers.
Their `features` say what calsync does: Google syncs the account's primary calendar both ways;
Microsoft, Apple and any CalDAV server can import from chosen calendars and export to one
calendar (a dedicated one, or a chosen one). The generic CalDAV provider is calsync's own and
takes the server's URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.errors import ApiError, responses
from api.external_calendars.schema import (
    CalendarType,
    ConnectMethod,
    ListEventFromCalendarsFeature,
    ListProvidersResponse,
    ProviderFeatures,
    ProviderOut,
    SyncToCalendarFeature,
)
from config import Settings
from providers import registry
from providers.base import ConnectMethod as Method
from providers.registry import ProviderEntry

router = APIRouter()


@dataclass(frozen=True)
class Catalogued:
    entry: ProviderEntry
    out: ProviderOut

    @property
    def system(self) -> str:
        return self.entry.id

    @property
    def features(self) -> ProviderFeatures:
        return self.out.features

    @property
    def uses_oauth(self) -> bool:
        return self.entry.capabilities.connect is Method.OAUTH

    @property
    def uses_credentials(self) -> bool:
        return self.entry.capabilities.connect is Method.CREDENTIALS

    @property
    def primary_only(self) -> bool:
        """Imports and exports the primary calendar only (Google, as Wix offers it)."""
        return self.features.listEventFromCalendars is _PRIMARY


_PRIMARY = ListEventFromCalendarsFeature.PRIMARY_CALENDAR_ONLY


def catalogued(entry: ProviderEntry) -> Catalogued:
    listing = entry.listing
    features = ProviderFeatures(
        connectMethods=[ConnectMethod(entry.capabilities.connect.value)], updateSyncConfig=True,
        listEventFromCalendars=ListEventFromCalendarsFeature(listing.imports),
        syncToCalendar=SyncToCalendarFeature(listing.exports),
        requiresServerUrl=listing.requires_server_url,
    )  # fmt: skip
    out = ProviderOut(
        id=listing.provider_id, name=listing.name, calendarType=CalendarType(listing.calendar_type),
        features=features, appDefId=listing.provider_id if listing.wix_builtin else None,
    )  # fmt: skip
    return Catalogued(entry, out)


def by_id(settings: Settings, provider_id: str, field: str = "providerId") -> Catalogued:
    entry = registry.by_listing_id(provider_id, settings)
    if entry is None or not entry.listing.listed:
        raise ApiError(404, "no such provider (see GET providers)", field=field)
    return catalogued(entry)


def of(settings: Settings, system: str) -> Catalogued:
    return catalogued(registry.entry(system, settings))


@router.get(
    "/providers",
    summary="List Providers",
    description="The external calendar providers a schedule can connect to, and their "
    "features. Check `features.connectMethods` to choose between Connect By OAuth and Connect "
    "By Credentials.",
    response_model=ListProvidersResponse,
    response_model_exclude_none=True,
    responses=responses(401, 403),
)
def list_providers(_: CallerDep, request: Request) -> ListProvidersResponse:
    listed = registry.entries(request.app.state.settings).values()
    return ListProvidersResponse(providers=[catalogued(e).out for e in listed if e.listing.listed])
