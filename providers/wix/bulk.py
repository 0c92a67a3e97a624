"""Wix's bulk calls (Bulk Create, Update and Cancel Event): their limits, and their answers
read as each item's event or the error its single call would have raised.

An answer is `{results: [{itemMetadata: {id, originalIndex, success, error: {code,
description}}, item}], bulkActionMetadata}` with HTTP 200 even when items fail; `item` comes
only when the request asks for it (`returnEntity`).
"""

from __future__ import annotations

from typing import Any

from providers.errors import (
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    TransientError,
)

CREATE_PATH = "/calendar/v3/bulk/events/create"
UPDATE_PATH = "/calendar/v3/bulk/events/update"
CANCEL_PATH = "/calendar/v3/bulk/events/cancel"
BULK_LIMIT = 100  # events per bulk create or cancel
UPDATE_LIMIT = 50  # Bulk Update Event takes at most 50
GONE = ("EVENT_NOT_FOUND", "EVENT_CANCELLED")  # a cancel's "done", an update's NotFound


def in_order(answer: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """A bulk answer's results in the order of the items sent."""
    results: dict[Any, dict[str, Any]] = {}
    for result in answer.get("results") or []:
        meta = result.get("itemMetadata") if isinstance(result, dict) else None
        if isinstance(meta, dict):
            results[meta.get("originalIndex")] = result
    if set(results) != set(range(count)):
        raise TransientError("wix bulk answer without one result per item")
    return [results[index] for index in range(count)]


def events_of(answer: dict[str, Any], count: int) -> list[dict[str, Any] | ProviderError]:
    """Each item's event (asked for with `returnEntity`), or its error."""
    events: list[dict[str, Any] | ProviderError] = []
    for result in in_order(answer, count):
        meta, item = result["itemMetadata"], result.get("item")
        if not meta.get("success"):
            events.append(item_error(meta.get("error") or {}))
        elif isinstance(item, dict):
            events.append(item)
        else:
            events.append(TransientError("wix bulk result without its event"))
    return events


def cancel_errors(answer: dict[str, Any], count: int) -> list[ProviderError | None]:
    """Each cancel's error; None when it cancelled, or the event was gone already."""
    errors: list[ProviderError | None] = []
    for result in in_order(answer, count):
        meta = result["itemMetadata"]
        error = meta.get("error") or {}
        done = meta.get("success") or error.get("code") in GONE
        errors.append(None if done else item_error(error))
    return errors


def item_error(error: dict[str, Any]) -> ProviderError:
    """A failed item as the error its single call would raise."""
    code = str(error.get("code", ""))
    text = f"wix bulk item {code}: {error.get('description', '')}"
    if code == "REVISION_MISMATCH":
        return PreconditionFailed(text)
    if code in GONE:
        return NotFound(text)
    if code == "SCHEDULE_NOT_FOUND":
        return PermanentError(PermanentReason.CALENDAR_DELETED, text)
    return PermanentError(PermanentReason.INVALID_EVENT, text)
