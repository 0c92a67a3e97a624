"""JSON shapes of Graph resources: event, calendar, user."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import ids
from .query import Predicate
from .zones import format_dttz, format_utc, local_date

if TYPE_CHECKING:
    from .state import CalendarRecord, Instance, Invitation, User

_DEFAULTS: dict[str, Any] = {
    "subject": "",
    "body": {"contentType": "text", "content": ""},
    "location": {"displayName": ""},
    "locations": [],
    "showAs": "busy",
    "importance": "normal",
    "sensitivity": "normal",
    "categories": [],
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "responseRequested": True,
    "attendees": [],
    "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown",
    "allowNewTimeProposals": True,
    "hideAttendees": False,
}
_TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.DOTALL | re.IGNORECASE)


def html_to_text(content: str) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", content)).split())


def body_preview(body: dict[str, Any]) -> str:
    text = body.get("content") or ""
    text = html_to_text(text) if body.get("contentType") == "html" else " ".join(text.split())
    return text[:255]


def render_event(
    instance: Instance,
    user: User,
    zone: str = "UTC",
    *,
    expand_props: Predicate | None = None,
    body_as_text: bool = False,
) -> dict[str, Any]:
    """The event as Graph returns it. Extended properties appear only when `$expand`ed."""
    content = {**_DEFAULTS, **instance.content}
    record, override = instance.record, instance.override
    start_tz, end_tz = instance.zones
    body = dict(content["body"])
    if body_as_text and body["contentType"] == "html":
        body = {"contentType": "text", "content": html_to_text(body["content"])}
    event: dict[str, Any] = {
        "@odata.etag": instance.etag,
        "id": instance.id,
        "createdDateTime": format_utc((override.created if override else None) or record.created),
        "lastModifiedDateTime": format_utc(
            (override.modified if override else None) or record.modified
        ),
        "changeKey": instance.change_key,
        "categories": content["categories"],
        "originalStartTimeZone": start_tz,
        "originalEndTimeZone": end_tz,
        "iCalUId": _ical_uid(instance),
        "uid": record.ical_uid,
        "reminderMinutesBeforeStart": content["reminderMinutesBeforeStart"],
        "isReminderOn": content["isReminderOn"],
        "hasAttachments": False,
        "subject": content["subject"],
        "bodyPreview": body_preview(content["body"]),
        "importance": content["importance"],
        "sensitivity": content["sensitivity"],
        "isAllDay": instance.is_all_day,
        "isCancelled": False,
        "isOrganizer": record.invitation is None,
        "responseRequested": content["responseRequested"],
        "seriesMasterId": record.id if instance.kind in ("occurrence", "exception") else None,
        "showAs": content["showAs"],
        "type": instance.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={instance.id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": content["isOnlineMeeting"],
        "onlineMeetingProvider": content["onlineMeetingProvider"],
        "allowNewTimeProposals": content["allowNewTimeProposals"],
        "isDraft": False,
        "hideAttendees": content["hideAttendees"],
        "responseStatus": _response_status(record.invitation),
        "body": body,
        "start": _when(instance.start, start_tz, zone, instance.is_all_day),
        "end": _when(instance.end, end_tz, zone, instance.is_all_day),
        "location": _location(content["location"]),
        "locations": content["locations"],
        "recurrence": record.recurrence.to_graph()
        if instance.kind == "seriesMaster" and record.recurrence
        else None,
        "attendees": content["attendees"],
        "organizer": {"emailAddress": _organizer(record.invitation, user)},
        "onlineMeeting": None,
    }
    if record.transaction_id and instance.kind in ("singleInstance", "seriesMaster"):
        event["transactionId"] = record.transaction_id  # only returned when an app set it
    if instance.original_start is not None:
        event["originalStart"] = format_utc(instance.original_start).replace(".000Z", "Z")
    if expand_props is not None:
        event["singleValueExtendedProperties"] = [
            p for p in ext_prop_list(instance) if expand_props(p)
        ]
    for name in instance.dropped:
        event.pop(name, None)
    return event


def _response_status(invitation: Invitation | None) -> dict[str, str]:
    if invitation is None:
        return {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
    answered = invitation.answered
    time = format_utc(answered) if answered else "0001-01-01T00:00:00Z"
    return {"response": invitation.response, "time": time}


def _organizer(invitation: Invitation | None, user: User) -> dict[str, str]:
    if invitation is None:
        return {"name": user.display_name, "address": user.upn}
    organizer = invitation.organizer
    return {"name": organizer.get("name", ""), "address": organizer["address"]}


def _when(instant: datetime, own_zone: str, zone: str, all_day: bool) -> dict[str, str]:
    """All-day events are dates: midnight of their own date whatever zone the client prefers."""
    if not all_day:
        return format_dttz(instant, zone)
    day = local_date(instant, own_zone)
    return {"dateTime": f"{day.isoformat()}T00:00:00.0000000", "timeZone": zone}


def ext_prop_list(instance: Instance) -> list[dict[str, str]]:
    return [{"id": k, "value": v} for k, v in instance.ext_props.items()]


def _location(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "displayName": raw.get("displayName", ""),
        "locationType": raw.get("locationType", "default"),
        "uniqueIdType": raw.get("uniqueIdType", "unknown"),
        "address": raw.get("address", {}),
        "coordinates": raw.get("coordinates", {}),
    }


def _ical_uid(instance: Instance) -> str:
    if instance.original_start is None:
        return instance.record.ical_uid
    return ids.occurrence_ical_uid(instance.record.ical_uid, instance.original_start)


def render_calendar(cal: CalendarRecord, user: User) -> dict[str, Any]:
    return {
        "id": cal.id,
        "name": cal.name,
        "color": cal.color,
        "hexColor": "",
        "isDefaultCalendar": cal.is_default,
        "changeKey": cal.change_key,
        "canShare": cal.can_edit,
        "canViewPrivateItems": True,
        "canEdit": cal.can_edit,
        "isRemovable": not cal.is_default,
        "isTallyingResponses": cal.can_edit,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": user.display_name, "address": user.upn},
    }


def render_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "displayName": user.display_name,
        "userPrincipalName": user.upn,
        "mail": user.upn,
        "mailboxSettings": {"timeZone": user.time_zone},
    }
