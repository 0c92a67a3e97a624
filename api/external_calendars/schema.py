"""The External Calendars API's JSON objects, spelled as Wix spells them (camelCase).

Fields marked "calsync addition" are ours; everything else mirrors Wix's External Calendars
API v2 (`bookings/v2/external-calendars`), see docs/api.md.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from api.errors import NO_NUL
from providers import registry

# Examples in the OpenAPI document: Wix's ids for Google and Apple.
GOOGLE_ID, APPLE_ID = (e.listing.provider_id for e in registry.BUILT_IN[:2])
ID_MAX = 64
SCHEDULE_EXAMPLE = "3e47ec65-4c8b-4d1c-b3a8-7c3d1a2f9e10"
CONNECTION_EXAMPLE = "9d0c3f5a6b7e4c1d8e2f3a4b5c6d7e8f"


def _clean(value: str) -> str:
    """Text the database can keep: no NUL character, nothing UTF-8 cannot encode."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    return value


# What `_clean` lets through, as the OpenAPI document can say it: any text without NUL.
Text = Annotated[str, AfterValidator(_clean), Field(json_schema_extra={"pattern": NO_NUL})]

# An absolute http(s) URL with a host name, as every URL field is checked (`http_url`); the
# pattern is a little stricter than the check, so what it admits the server accepts.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
HTTP_URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:{_PORT})?([/?#][^\s\u0000]*)?$"
# A mailbox as `email_address` checks it (`format: email` generators keep to it).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 -- raises for a port out of range
    except ValueError:  # e.g. an unclosed IPv6 bracket, or port 70000
        usable = False
    if not usable:
        raise ValueError("must be an absolute http(s) URL")
    return value


def email_address(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address, like owner@studio.example")
    return value


_URL_SCHEMA = {"format": "uri", "pattern": HTTP_URL_PATTERN}
HttpUrl = Annotated[Text, AfterValidator(http_url), Field(json_schema_extra=_URL_SCHEMA)]
EmailAddress = Annotated[Text, AfterValidator(email_address),
                         Field(json_schema_extra={"format": "email"})]  # fmt: skip


def _example(value: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class CalendarType(StrEnum):
    UNDEFINED = "UNDEFINED"
    GOOGLE = "GOOGLE"
    I_CAL = "I_CAL"
    OUTLOOK = "OUTLOOK"
    OFFICE_365 = "OFFICE_365"
    MICROSOFT = "MICROSOFT"
    OTHER = "OTHER"


class ConnectMethod(StrEnum):
    OAUTH = "OAUTH"
    CREDENTIALS = "CREDENTIALS"


class ListEventFromCalendarsFeature(StrEnum):
    UNDEFINED = "UNDEFINED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    PRIMARY_CALENDAR_ONLY = "PRIMARY_CALENDAR_ONLY"
    SPECIFIC_CALENDARS = "SPECIFIC_CALENDARS"


class SyncToCalendarFeature(StrEnum):
    UNDEFINED = "UNDEFINED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    PRIMARY_CALENDAR_ONLY = "PRIMARY_CALENDAR_ONLY"
    SPECIFIC_CALENDAR = "SPECIFIC_CALENDAR"
    DEDICATED_CALENDAR = "DEDICATED_CALENDAR"


class ConnectionStatusValue(StrEnum):
    UNDEFINED = "UNDEFINED"
    CONNECTED = "CONNECTED"
    SYNC_IN_PROGRESS = "SYNC_IN_PROGRESS"
    SYNCED = "SYNCED"
    DISCONNECTED = "DISCONNECTED"
    ERROR = "ERROR"


class ErrorReasonValue(StrEnum):
    UNDEFINED = "UNDEFINED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    EXTERNAL_CALENDAR_CREATION_FAILED = "EXTERNAL_CALENDAR_CREATION_FAILED"
    EXTERNAL_CALENDAR_DELETED = "EXTERNAL_CALENDAR_DELETED"


class PrivacyMode(StrEnum):
    """calsync addition: what exported copies show."""

    FULL = "FULL"
    BUSY_ONLY = "BUSY_ONLY"


class ConflictPolicyValue(StrEnum):
    """calsync addition: who wins a field changed on both sides since the last sync."""

    ORIGIN_WINS = "ORIGIN_WINS"
    WIX_WINS = "WIX_WINS"
    EXTERNAL_WINS = "EXTERNAL_WINS"
    LATEST_WINS = "LATEST_WINS"


# -- providers -------------------------------------------------------------------------------


class ProviderFeatures(BaseModel):
    connectMethods: list[ConnectMethod]
    updateSyncConfig: bool = Field(
        description="Whether the sync configuration can be updated after connecting"
    )
    listEventFromCalendars: ListEventFromCalendarsFeature
    syncToCalendar: SyncToCalendarFeature
    requiresServerUrl: bool = Field(
        False,
        description="calsync addition: Connect By Credentials needs `serverUrl` (generic CalDAV)",
    )


class ProviderOut(BaseModel):
    id: str
    name: str
    calendarType: CalendarType
    features: ProviderFeatures
    appDefId: str | None = Field(None, description="As in Wix's example: equals `id`")


class ListProvidersResponse(BaseModel):
    providers: list[ProviderOut]


# -- sync configuration ------------------------------------------------------------------------


class Empty(BaseModel):
    """Pass an empty object to pick this option."""


class CalendarRef(BaseModel):
    id: Text = Field(min_length=1, max_length=1024, description="External calendar ID")
    name: str | None = Field(None, description="Display name (read only)")


class CalendarRefs(BaseModel):
    calendars: list[CalendarRef] = Field(max_length=100)


def _one_of(*members: str) -> ConfigDict:
    """At most one of `members` may be given (the document says so; `sync_config` checks it)."""
    pairs = [[a, b] for i, a in enumerate(members) for b in members[i + 1 :]]
    rules: list[Any] = [{"not": {"required": pair}} for pair in pairs]
    return ConfigDict(json_schema_extra={"allOf": rules})


class ListEventFromCalendarsConfig(BaseModel):
    """Import: which external calendars block time on the Wix schedule. Give `enabled` and,
    when enabled, exactly one of `primaryCalendar` and `calendars`."""

    model_config = _one_of("primaryCalendar", "calendars")

    enabled: bool | None = None
    primaryCalendar: Empty | None = None
    calendars: CalendarRefs | None = None


class SyncToCalendarConfig(BaseModel):
    """Export: where the schedule's sessions are copied. Give `enabled` and, when enabled,
    exactly one of `primaryCalendar`, `dedicatedCalendar` and `calendar`."""

    model_config = _one_of("primaryCalendar", "dedicatedCalendar", "calendar")

    enabled: bool | None = None
    primaryCalendar: Empty | None = None
    dedicatedCalendar: Empty | None = Field(
        None, description="A new calendar calsync creates in the account for the sessions"
    )
    calendar: CalendarRef | None = Field(
        None, description="calsync addition: one specific existing calendar"
    )


class SyncConfig(BaseModel):
    listEventFromCalendars: ListEventFromCalendarsConfig | None = None
    syncToCalendar: SyncToCalendarConfig | None = None
    privacy: PrivacyMode | None = Field(
        None, description="calsync addition: BUSY_ONLY copies show neither description nor place"
    )
    conflictPolicy: ConflictPolicyValue | None = Field(
        None, description="calsync addition: who wins a field edited on both sides"
    )
    blockAllDayEvents: bool | None = Field(
        None, description="calsync addition: all-day external events block time too"
    )
    blockFreeEvents: bool | None = Field(
        None, description="calsync addition: external events marked free block time too"
    )


# -- connections -----------------------------------------------------------------------------


class ConnectionOut(BaseModel):
    id: str
    providerId: str
    calendarType: CalendarType
    scheduleId: str
    userId: str | None = Field(
        None, description="The Wix user the schedule belongs to, read from the schedule after "
        "connecting; absent when its owner has no Wix user",
    )  # fmt: skip
    appId: str | None = Field(
        None, description="The Wix app the connection belongs to: calsync's own app "
        "(`CALSYNC_WIX_APP_ID`)",
    )  # fmt: skip
    externalAccountEmail: str | None = None
    status: ConnectionStatusValue
    errorReason: ErrorReasonValue | None = None
    syncConfig: SyncConfig

    model_config = _example(
        {
            "id": CONNECTION_EXAMPLE,
            "providerId": GOOGLE_ID,
            "calendarType": "GOOGLE",
            "scheduleId": SCHEDULE_EXAMPLE,
            "userId": "76570209-1f2e-4a3b-9c8d-5e6f7a8b9c0d",
            "appId": "0b5f2a3c-6d7e-4f80-9a1b-2c3d4e5f6a7b",
            "externalAccountEmail": "alice@example.com",
            "status": "SYNCED",
            "syncConfig": {
                "listEventFromCalendars": {"enabled": True, "primaryCalendar": {}},
                "syncToCalendar": {"enabled": True, "primaryCalendar": {}},
                "privacy": "FULL",
                "conflictPolicy": "ORIGIN_WINS",
                "blockAllDayEvents": False,
                "blockFreeEvents": False,
            },
        }
    )


class ConnectionResponse(BaseModel):
    connection: ConnectionOut


def _schedule_id() -> Any:
    return Field(min_length=1, max_length=ID_MAX, examples=[SCHEDULE_EXAMPLE])


def _provider_id() -> Any:
    return Field(min_length=1, max_length=ID_MAX, examples=[GOOGLE_ID])


class ConnectByOAuthRequest(BaseModel):
    scheduleId: Text = _schedule_id()
    providerId: Text = _provider_id()
    redirectUrl: HttpUrl = Field(
        min_length=1, max_length=2048, examples=["https://mysite.com/oauth_completed"],
        description="Where the user returns with `connectionId` or `error` added",
    )  # fmt: skip


class ConnectByOAuthResponse(BaseModel):
    oauthUrl: str = Field(description="URL of the provider's authorization page")


class ConnectByCredentialsRequest(BaseModel):
    scheduleId: Text = _schedule_id()
    providerId: Text = Field(min_length=1, max_length=ID_MAX, examples=[APPLE_ID])
    email: Text = Field(
        min_length=1, max_length=320, examples=["alice@icloud.com"],
        description="Account email (Apple ID), or the user name on a CalDAV server",
    )  # fmt: skip
    password: SecretStr = Field(
        min_length=1, max_length=1024, description="Password (Apple: an app-specific password)"
    )
    serverUrl: HttpUrl | None = Field(
        None, max_length=2048, examples=["https://dav.example.com/"],
        description="calsync addition: the CalDAV server (generic CalDAV provider only)",
    )  # fmt: skip


# What Update Sync Config's `fieldMask` may name: a part of `syncConfig`, or a member of its
# import or export part; each may also be spelt with `syncConfig.` before it.
MASKABLE = (
    "listEventFromCalendars", "listEventFromCalendars.enabled",
    "listEventFromCalendars.primaryCalendar", "listEventFromCalendars.calendars",
    "syncToCalendar", "syncToCalendar.enabled", "syncToCalendar.primaryCalendar",
    "syncToCalendar.dedicatedCalendar", "syncToCalendar.calendar",
    "privacy", "conflictPolicy", "blockAllDayEvents", "blockFreeEvents",
)  # fmt: skip
MASK_PATHS = (*MASKABLE, *(f"syncConfig.{path}" for path in MASKABLE))


def _maskable(value: str) -> str:
    if value not in MASK_PATHS:
        raise ValueError(f"not a field of syncConfig: {value!r}")
    return value


MaskPath = Annotated[str, AfterValidator(_maskable),
                     Field(json_schema_extra={"enum": list(MASK_PATHS)})]  # fmt: skip


class FieldMask(BaseModel):
    paths: list[MaskPath] = Field(max_length=len(MASK_PATHS))


class UpdateSyncConfigRequest(BaseModel):
    syncConfig: SyncConfig
    fieldMask: FieldMask | None = Field(
        None, description="Only these fields of `syncConfig` change; one named but left out of "
        "`syncConfig` takes its default (import or export disabled, FULL, ORIGIN_WINS, false). "
        "Without it (or with no paths), every field given changes",
    )  # fmt: skip

    model_config = _example(
        {
            "syncConfig": {
                "listEventFromCalendars": {
                    "enabled": True,
                    "calendars": {"calendars": [{"id": "home"}, {"id": "work"}]},
                },
                "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}},
            }
        }
    )


class CalendarOut(BaseModel):
    id: str
    name: str | None = None
    primary: bool = Field(False, description="calsync addition")
    readOnly: bool = Field(False, description="calsync addition")


class ListCalendarsResponse(BaseModel):
    calendars: list[CalendarOut]


# -- events ----------------------------------------------------------------------------------


class EventOut(BaseModel):
    scheduleId: str
    calendarType: CalendarType
    calendarName: str | None = Field(None, description="Only with fieldsets=OWN_PI")
    title: str | None = Field(None, description="Only with fieldsets=OWN_PI")
    start: str = Field(examples=["2023-01-02T22:00:00.000Z"])
    end: str = Field(examples=["2023-01-02T23:15:00.000Z"])
    allDay: bool = False
    scheduleOwnerId: str | None = Field(
        None, description="The Wix user the schedule belongs to (`userIds` filters by it)"
    )
    scheduleOwnerName: str | None = Field(
        None, description="The schedule's name, its owner's; only with fieldsets=OWN_PI"
    )
    tag: str | None = Field(
        None, description="calsync addition: the tag the event's busy block holds in Wix, the "
        "provider's name (`google`, `microsoft`, `apple`, `caldav`), as v1's sessions held it",
    )  # fmt: skip


class Cursors(BaseModel):
    next: str | None = None


class PagingMetadata(BaseModel):
    count: int
    cursors: Cursors
    hasNext: bool


class ListConnectionsResponse(BaseModel):
    connections: list[ConnectionOut]
    pagingMetadata: PagingMetadata
    failedProviderIds: list[str] | None = Field(
        None, description="Returned only with `partialFailure=true`"
    )


class ListEventsResponse(BaseModel):
    events: list[EventOut]
    pagingMetadata: PagingMetadata
    failedProviderIds: list[str] | None = None


# -- calsync additions: status ---------------------------------------------------------------


class RunSummary(BaseModel):
    id: str
    kind: str = Field(description="incremental, full, poll or disconnect")
    trigger: str
    status: str
    startedDate: str
    finishedDate: str | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    errors: int = 0
    error: str | None = None
    lagMs: int | None = None


class CalendarStatusOut(BaseModel):
    id: str
    name: str | None = None
    importEnabled: bool
    exportTarget: bool
    lastSyncedDate: str | None = None
    lastRun: RunSummary | None = None


class ConnectionStatusResponse(BaseModel):
    """calsync addition: how the connection's sync is doing."""

    connectionId: str
    status: ConnectionStatusValue
    errorReason: ErrorReasonValue | None = None
    errorMessage: str | None = None
    lastSyncedDate: str | None = None
    secondsSinceLastSync: int | None = None
    lagMs: int | None = Field(
        None, description="Notification received to change applied, in the last complete run"
    )
    pendingChanges: int = Field(description="Notifications recorded and not yet applied")
    failedRuns24h: int
    deadLetters: int = Field(description="Changes that keep failing (retried or parked)")
    openConflicts: int
    calendars: list[CalendarStatusOut]
    cleanup: RunSummary | None = Field(None, description="The disconnect clean-up, once asked")


# -- calsync additions: who is told when a connection breaks -----------------------------------


class NotificationSettings(BaseModel):
    """calsync addition: who is told, once per break, when a connection stops syncing."""

    email: EmailAddress | None = Field(
        None, max_length=320, examples=["owner@studio.example"],
        description="Where the email goes; null for no email",
    )  # fmt: skip
    webhookUrl: HttpUrl | None = Field(
        None, max_length=2048, examples=["http://127.0.0.1:9000/calsync-alerts"],
        description="Where the signed JSON is POSTed: https, or http to a receiver on loopback; "
        "null for no webhook",
    )  # fmt: skip


class UpdateNotificationSettingsRequest(BaseModel):
    notificationSettings: NotificationSettings
    rotateWebhookSecret: bool = Field(
        False, description="A new webhook secret although the URL stays (the old one stops)"
    )


class NotificationSettingsResponse(BaseModel):
    notificationSettings: NotificationSettings
    webhookSecret: str | None = Field(
        None, description="Shown once: when the webhook URL is set or changed, or the secret "
        "rotated. Deliveries are signed with it (docs/api.md, Break alerts)",
    )  # fmt: skip


# -- calsync additions: sync runs, conflicts, dead letters ---------------------------------------


class RunActionCount(BaseModel):
    """How many of one kind of action a run planned, by side, reason code and outcome."""

    action: str = Field(description="Create, Update, Delete, SaveLink, ForgetLink, "
                        "RemoveOrphan, or Skip (a change seen and left alone)")  # fmt: skip
    side: str = Field(description="wix or external: where it writes (or was seen)")
    reason: str = Field(description="The reason code, e.g. CREATED_IN_WIX, ECHO")
    outcome: str = Field(description="done, failed, parked (a dead letter) or skipped")
    count: int


class SyncRunOut(BaseModel):
    """One sync of one calendar: what started it, what it did, how long it took."""

    id: str
    calendarId: str | None = Field(None, description="The external calendar's id")
    kind: str = Field(description="incremental, full, poll or disconnect")
    trigger: str = Field(description="webhook, reconcile, resync, connect, retry, resolve, ...")
    status: str = Field(description="RUNNING, SUCCEEDED or FAILED")
    startedDate: str
    finishedDate: str | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    skipped: int = 0
    errors: int = 0
    apiCalls: int = 0
    durationMs: int | None = None
    lagMs: int | None = Field(None, description="Notification received to change applied")
    error: str | None = None
    planned: int | None = Field(None, description="Actions planned (a large run: from its start)")
    progress: int | None = Field(None, description="Actions applied so far, of `planned`")
    actions: list[RunActionCount] | None = None


class ListSyncRunsResponse(BaseModel):
    syncRuns: list[SyncRunOut]
    pagingMetadata: PagingMetadata


class ConflictStatusValue(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVING = "RESOLVING"
    RESOLVED = "RESOLVED"
    SUPERSEDED = "SUPERSEDED"


class SideValue(StrEnum):
    WIX = "WIX"
    EXTERNAL = "EXTERNAL"


class KeepChoice(StrEnum):
    WINNER = "WINNER"
    WIX = "WIX"
    EXTERNAL = "EXTERNAL"


class ConflictOut(BaseModel):
    """A field edited on both sides since the last sync, and how the policy decided it."""

    id: str
    connectionId: str
    field: str = Field(description="title, description, location, when, status, transparency; "
                       "`deleted` when an edit met a deletion")  # fmt: skip
    baseValue: Any = Field(None, description="The value both sides agreed on before")
    wixValue: Any = None
    externalValue: Any = None
    policy: str = Field(description="The conflict policy, or the rule that decided")
    winner: SideValue
    status: ConflictStatusValue
    decidedDate: str
    syncRunId: str | None = None


class ConflictDetail(ConflictOut):
    syncRun: SyncRunOut | None = Field(None, description="The run that decided it")


class ListConflictsResponse(BaseModel):
    conflicts: list[ConflictOut]
    pagingMetadata: PagingMetadata


class ConflictResponse(BaseModel):
    conflict: ConflictDetail


class ResolveConflictRequest(BaseModel):
    keep: KeepChoice = Field(
        description="WINNER closes the conflict as decided; the losing side (WIX or EXTERNAL) "
        "has its value written to both sides"
    )


class DeadLetterStatusValue(StrEnum):
    FAILING = "FAILING"
    PARKED = "PARKED"
    RETRYING = "RETRYING"


class DeadLetterOut(BaseModel):
    """A change that keeps failing; parked ones are skipped until retried."""

    id: str
    connectionId: str
    calendarId: str | None = Field(None, description="The external calendar's id")
    changeKey: str
    action: dict[str, str] = Field(description="kind, side and reason of the failing write")
    error: str
    attempts: int
    status: DeadLetterStatusValue
    createdDate: str
    updatedDate: str
    parkedDate: str | None = None


class ListDeadLettersResponse(BaseModel):
    deadLetters: list[DeadLetterOut]
    pagingMetadata: PagingMetadata


class DeadLetterResponse(BaseModel):
    deadLetter: DeadLetterOut
