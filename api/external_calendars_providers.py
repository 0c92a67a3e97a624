"""The providers calsync connects to, with Wix's provider ids, and `GET providers`.

Google, Apple and Microsoft keep the ids, names and calendar types of Wix's built-in providers.
Their `features` say what calsync does (Wix's own example values are illustrative): Google and
Microsoft sync the account's primary calendar both ways; Apple and any CalDAV server can import
from chosen calendars and export to one calendar (a dedicated one, or a chosen one). The generic
CalDAV provider is calsync's own and takes the server's URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from api.auth import CallerDep
from api.errors import ApiError, responses
from api.external_calendars_schema import (
    APPLE_ID,
    CALDAV_ID,
    GOOGLE_ID,
    LOCAL_ID,
    MICROSOFT_ID,
    CalendarType,
    ConnectMethod,
    ListEventFromCalendarsFeature,
    ListProvidersResponse,
    ProviderFeatures,
    ProviderOut,
    SyncToCalendarFeature,
)
from models import Provider

router = APIRouter()


@dataclass(frozen=True)
class Catalogued:
    provider: Provider
    out: ProviderOut
    listed: bool = True

    @property
    def features(self) -> ProviderFeatures:
        return self.out.features

    @property
    def uses_oauth(self) -> bool:
        return ConnectMethod.OAUTH in self.features.connectMethods

    @property
    def uses_credentials(self) -> bool:
        return ConnectMethod.CREDENTIALS in self.features.connectMethods


def _entry(
    provider: Provider, provider_id: str, name: str, calendar_type: CalendarType,
    method: ConnectMethod, listing: ListEventFromCalendarsFeature,
    export: SyncToCalendarFeature, *, server_url: bool = False, listed: bool = True,
    wix_builtin: bool = True,
) -> Catalogued:  # fmt: skip
    features = ProviderFeatures(
        connectMethods=[method], updateSyncConfig=True, listEventFromCalendars=listing,
        syncToCalendar=export, requiresServerUrl=server_url,
    )  # fmt: skip
    out = ProviderOut(
        id=provider_id, name=name, calendarType=calendar_type, features=features,
        appDefId=provider_id if wix_builtin else None,
    )  # fmt: skip
    return Catalogued(provider, out, listed)


_PRIMARY = ListEventFromCalendarsFeature.PRIMARY_CALENDAR_ONLY
_SPECIFIC = ListEventFromCalendarsFeature.SPECIFIC_CALENDARS
CATALOG: tuple[Catalogued, ...] = (
    _entry(Provider.GOOGLE, GOOGLE_ID, "Google Calendar", CalendarType.GOOGLE,
           ConnectMethod.OAUTH, _PRIMARY, SyncToCalendarFeature.PRIMARY_CALENDAR_ONLY),
    _entry(Provider.APPLE, APPLE_ID, "Apple Calendar", CalendarType.I_CAL,
           ConnectMethod.CREDENTIALS, _SPECIFIC, SyncToCalendarFeature.DEDICATED_CALENDAR),
    _entry(Provider.MICROSOFT, MICROSOFT_ID, "Outlook or Office 365", CalendarType.MICROSOFT,
           ConnectMethod.OAUTH, _SPECIFIC, SyncToCalendarFeature.DEDICATED_CALENDAR),
    _entry(Provider.CALDAV, CALDAV_ID, "CalDAV", CalendarType.OTHER, ConnectMethod.CREDENTIALS,
           _SPECIFIC, SyncToCalendarFeature.DEDICATED_CALENDAR, server_url=True,
           wix_builtin=False),
    # calsync's local calendar store: connections made by tests and `calsync demo`, not offered.
    _entry(Provider.LOCAL, LOCAL_ID, "calsync local store", CalendarType.OTHER,
           ConnectMethod.CREDENTIALS, _SPECIFIC, SyncToCalendarFeature.DEDICATED_CALENDAR,
           listed=False, wix_builtin=False),
)  # fmt: skip
BY_ID = {entry.out.id: entry for entry in CATALOG}
BY_PROVIDER = {entry.provider: entry for entry in CATALOG}


def by_id(provider_id: str, field: str = "providerId") -> Catalogued:
    entry = BY_ID.get(provider_id)
    if entry is None or not entry.listed:
        raise ApiError(404, "no such provider (see GET providers)", field=field)
    return entry


def of(provider: Provider) -> Catalogued:
    return BY_PROVIDER[provider]


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
def list_providers(_: CallerDep) -> ListProvidersResponse:
    return ListProvidersResponse(providers=[e.out for e in CATALOG if e.listed])
