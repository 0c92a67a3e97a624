"""The part of Wix's query language the sandbox understands, and cursor paging.

Filters are matched against the JSON a client would receive, so any field it can read it can filter
on, with dotted paths (`extendedFields.namespaces.@calsync/sync.provider`). Cursors are opaque
base64 strings that carry the whole query and the sort key of the last item returned: keyset paging,
so inserts and cancellations between pages neither skip nor repeat what was already seen.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.wix.errors import invalid

_MISSING = object()
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda value, arg: value == arg,
    "$ne": lambda value, arg: value != arg,
    "$in": lambda value, arg: value in arg,
    "$nin": lambda value, arg: value not in arg,
    "$gt": lambda value, arg: value is not _MISSING and value > arg,
    "$gte": lambda value, arg: value is not _MISSING and value >= arg,
    "$lt": lambda value, arg: value is not _MISSING and value < arg,
    "$lte": lambda value, arg: value is not _MISSING and value <= arg,
    "$exists": lambda value, arg: (value is not _MISSING) == bool(arg),
    "$startsWith": lambda value, arg: isinstance(value, str) and value.startswith(arg),
    "$hasSome": lambda value, arg: isinstance(value, list) and any(v in value for v in arg),
    "$hasAll": lambda value, arg: isinstance(value, list) and all(v in value for v in arg),
}
_LIST_OPERATORS = ("$in", "$nin", "$hasSome", "$hasAll")


def lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(doc: dict[str, Any], flt: dict[str, Any]) -> bool:
    for key, condition in flt.items():
        if key == "$and":
            ok = all(matches(doc, sub) for sub in _sub_filters(condition, key))
        elif key == "$or":
            ok = any(matches(doc, sub) for sub in _sub_filters(condition, key))
        elif key == "$not":
            ok = not matches(doc, _sub_filters([condition], key)[0])
        else:
            ok = _field_matches(lookup(doc, key), condition, key)
        if not ok:
            return False
    return True


def _sub_filters(value: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(f"query.filter.{key}", "expects a list of filters")
    return value


def _field_matches(value: Any, condition: Any, path: str) -> bool:
    if not (
        isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
    ):
        return bool(value == condition)
    for operator, argument in condition.items():
        test = _OPERATORS.get(operator)
        if test is None:
            raise invalid(f"query.filter.{path}", f"unsupported operator {operator}")
        if operator in _LIST_OPERATORS and not isinstance(argument, list):
            raise invalid(f"query.filter.{path}", f"{operator} expects a list")
        try:
            if not test(value, argument):
                return False
        except TypeError as exc:
            raise invalid(f"query.filter.{path}", f"can't compare with {argument!r}") from exc
    return True


def mentions(flt: Any, field: str) -> bool:
    """Whether a filter says anything about `field` (so a default exclusion should step aside)."""
    if isinstance(flt, dict):
        return any(key == field or mentions(value, field) for key, value in flt.items())
    if isinstance(flt, list):
        return any(mentions(item, field) for item in flt)
    return False


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    has_next: bool
    next_cursor: str | None

    def metadata(self) -> dict[str, Any]:
        cursors = {"next": self.next_cursor} if self.next_cursor else {}
        return {"count": len(self.items), "cursors": cursors, "hasNext": self.has_next}


def paginate(
    ordered: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], list[Any]],
    limit: int,
    after: list[Any] | None,
    descending: bool,
    carry: dict[str, Any],
) -> Page:
    """One page of `ordered` (already sorted by `key`) after the key `after`."""
    if after is not None:
        ordered = [
            item for item in ordered if (key(item) < after if descending else key(item) > after)
        ]
    items = ordered[:limit]
    has_next = len(ordered) > limit
    cursor = encode_cursor({**carry, "after": key(items[-1])}) if has_next else None
    return Page(items=items, has_next=has_next, next_cursor=cursor)


def read_limit(paging: Any, default: int, maximum: int) -> int:
    limit = paging.get("limit", default) if isinstance(paging, dict) else default
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise invalid("query.cursorPaging.limit", f"must be an integer from 1 to {maximum}")
    return limit


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: Any) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(str(cursor).encode("ascii")))
    except (ValueError, binascii.Error) as exc:
        raise invalid("query.cursorPaging.cursor", "not a cursor this server issued") from exc
    if not isinstance(state, dict):
        raise invalid("query.cursorPaging.cursor", "not a cursor this server issued")
    return state
