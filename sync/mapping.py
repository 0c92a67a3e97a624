"""Field mapping between Wix and an external calendar, both ways.

Export (an event born in Wix, a session): the external copy gets the session's title and
description unless `externalCalendarOverrides` replace them (the session's, else the
schedule's; see `effective_overrides`); location, start, end, all-day, zone, status,
transparency and recurrence as they are. Under `busy_only` privacy the copy says "Busy" and
carries no description and no location.

Import (an event born in the external calendar): the Wix copy is a busy block, tagged with the
provider's name by the planner. It has the event's title, description and location under `full`
privacy, "Busy" and nothing else under `busy_only`; it is always busy. An invitation the
calendar's owner declined never blocks time (tentative and unanswered ones do); an all-day or
a free event blocks time only if the connection says so (`blocking_reason`).

Reversibility: which fields of a copy flow back to the origin when someone edits the copy.
    reversible on both directions: when (start, end, all-day, zone), status
    reversible under `full` privacy: location; title and description unless an override
        replaces them (an export's copy then shows the override, not the session's text)
    reversible on exports only: transparency (a busy block is busy by definition)
    never: the series rule (the origin owns the series' shape)
Everything not reversible is derived: the copy shows what this module computes from the origin.

Decision: an edit of a derived field on a copy is reverted to the mapped value on the next sync
(reason REVERTED_DERIVED_FIELD), not ignored. The copy then always equals `copy_of(origin)`, which
is what a reader of either calendar can rely on and what the convergence test checks; every
update is a full-state write, so "ignoring" would only postpone the same overwrite to whenever
the origin next changes; and the revert is one write whose echo is recognised, so it cannot loop.
"""

from __future__ import annotations

from dataclasses import replace

from sync.event import CanonicalEvent, ExternalCalendarOverrides, Field, Transparency
from sync.policy import ConnectionPolicy, Privacy
from sync.reasons import Reason
from sync.side import Side

BUSY_TITLE = "Busy"


def effective_overrides(
    session: ExternalCalendarOverrides | None, schedule: ExternalCalendarOverrides | None
) -> ExternalCalendarOverrides | None:
    """The session's override for each field, else the schedule's; blank counts as unset."""
    none = ExternalCalendarOverrides()
    session, schedule = session or none, schedule or none
    title = _first_set(session.title, schedule.title)
    description = _first_set(session.description, schedule.description)
    if title is None and description is None:
        return None
    return ExternalCalendarOverrides(title=title, description=description)


def copy_of(
    origin: Side,
    event: CanonicalEvent,
    policy: ConnectionPolicy,
    overrides: ExternalCalendarOverrides | None = None,
) -> CanonicalEvent:
    """What the other side should hold for an event born on `origin`."""
    if origin is Side.WIX:
        return export_event(event, overrides, policy.privacy)
    return import_event(event, policy.privacy)


def export_event(
    session: CanonicalEvent, overrides: ExternalCalendarOverrides | None, privacy: Privacy
) -> CanonicalEvent:
    if privacy is Privacy.BUSY_ONLY:
        return replace(session, title=BUSY_TITLE, description="", location="")
    ov = overrides or ExternalCalendarOverrides()
    return replace(
        session,
        title=_first_set(ov.title) or session.title,
        description=_first_set(ov.description) or session.description,
    )


def import_event(external: CanonicalEvent, privacy: Privacy) -> CanonicalEvent:
    block = replace(external, transparency=Transparency.BUSY, declined=False)
    if privacy is Privacy.BUSY_ONLY:
        return replace(block, title=BUSY_TITLE, description="", location="")
    return block


def blocking_reason(external: CanonicalEvent, policy: ConnectionPolicy) -> Reason | None:
    """Why an external event does not block time in Wix, or None when it does."""
    if external.declined:
        return Reason.DECLINED_NOT_BLOCKING
    if external.all_day and not policy.block_all_day:
        return Reason.ALL_DAY_NOT_BLOCKING
    if external.transparency is Transparency.FREE and not policy.block_free:
        return Reason.FREE_NOT_BLOCKING
    return None


def reversible_fields(
    origin: Side, policy: ConnectionPolicy, overrides: ExternalCalendarOverrides | None = None
) -> frozenset[Field]:
    """The fields whose edits on the copy flow back to the origin (see the module docstring)."""
    fields = {Field.WHEN, Field.STATUS}
    if origin is Side.WIX:
        fields.add(Field.TRANSPARENCY)
    if policy.privacy is Privacy.FULL:
        fields.add(Field.LOCATION)
        ov = overrides if origin is Side.WIX and overrides else ExternalCalendarOverrides()
        if _first_set(ov.title) is None:
            fields.add(Field.TITLE)
        if _first_set(ov.description) is None:
            fields.add(Field.DESCRIPTION)
    return frozenset(fields)


def _first_set(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip():
            return value
    return None
