"""The OData subset Graph clients send for events: `$filter`, `$orderby`, `$select`, `$expand`.

`$filter` grammar: comparisons (`eq ne gt ge lt le`) on property paths (`start/dateTime`),
`contains()`/`startswith()`, `and`/`or`/parentheses, and the lambda
`singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')`.
String comparison is case-insensitive except for `id` paths (Graph: the property name part of an
extended property id is case-sensitive, its value is not).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .errors import GraphError

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')"
    r"|(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?)"
    r"|(?P<punct>[(),:])|(?P<word>[^\s(),':]+))"
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCS = {"contains", "startswith", "endswith"}


def filter_error(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", f"Invalid filter clause: {message}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def parse(self) -> Predicate:
        pred = self.disjunction(None)
        if self.pos != len(self.tokens):
            raise filter_error(f"unexpected {self.tokens[self.pos][1]!r}")
        return pred

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise filter_error("unexpected end")
        token = self.tokens[self.pos]
        if expected is not None and token[1].lower() != expected:
            raise filter_error(f"expected {expected!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def disjunction(self, var: str | None) -> Predicate:
        parts = [self.conjunction(var)]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.conjunction(var))
        return parts[0] if len(parts) == 1 else lambda row: any(p(row) for p in parts)

    def conjunction(self, var: str | None) -> Predicate:
        parts = [self.term(var)]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.term(var))
        return parts[0] if len(parts) == 1 else lambda row: all(p(row) for p in parts)

    def term(self, var: str | None) -> Predicate:
        kind, text = self.take()
        if text == "(":
            inner = self.disjunction(var)
            self.take(")")
            return inner
        if text.lower() == "not":
            negated = self.term(var)
            return lambda row: not negated(row)
        if kind != "word":
            raise filter_error(f"unexpected {text!r}")
        if text.lower() in _FUNCS and self.peek() == "(":
            return self.function(text.lower(), var)
        if self.peek() == "(" and text.lower().endswith("/any"):
            return self.lambda_any(text[: -len("/any")])
        op = self.take()[1].lower()
        if op not in _COMPARE:
            raise filter_error(f"unsupported operator {op!r}")
        path, literal = _strip_var(text, var), _literal(self.take())
        return lambda row: _compare(_resolve(row, path), op, literal, path)

    def function(self, name: str, var: str | None) -> Predicate:
        self.take("(")
        path = _strip_var(self.take()[1], var)
        self.take(",")
        literal = str(_literal(self.take())).lower()
        self.take(")")

        def test(row: dict[str, Any]) -> bool:
            value = str(_resolve(row, path) or "").lower()
            return getattr(value, name if name != "contains" else "__contains__")(literal)

        return test

    def lambda_any(self, collection: str) -> Predicate:
        self.take("(")
        name = self.take()[1]
        self.take(":")
        inner = self.disjunction(name)
        self.take(")")

        def test(row: dict[str, Any]) -> bool:
            items = _resolve(row, collection) or []
            return any(inner(item) for item in items if isinstance(item, dict))

        return test


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise filter_error(f"cannot read {text[pos:]!r}")
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _strip_var(path: str, var: str | None) -> str:
    return path[len(var) + 1 :] if var and path.startswith(var + "/") else path


def _literal(token: tuple[str, str]) -> Any:
    kind, text = token
    if kind == "str":
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return float(text) if "." in text or "e" in lowered else int(text)
    except ValueError:
        return text  # an unquoted DateTimeOffset such as 2024-01-01T00:00:00Z


def _resolve(row: Any, path: str) -> Any:
    for part in path.split("/"):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def _as_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
        return None
    try:
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None


_ORDER = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _compare(value: Any, op: str, literal: Any, path: str) -> bool:
    left_time, right_time = _as_time(value), _as_time(literal)
    left: Any = value
    right: Any = literal
    if left_time is not None and right_time is not None:
        left, right = _naive_utc(left_time), _naive_utc(right_time)
    elif isinstance(value, str) and isinstance(literal, str) and not path.endswith("id"):
        left, right = value.lower(), literal.lower()
    if op in ("eq", "ne"):
        return (left == right) == (op == "eq")
    if left is None or right is None:
        return False
    try:
        return bool(_ORDER[op](left, right))
    except TypeError:
        return False


def parse_filter(text: str) -> Predicate:
    return _Parser(text).parse()


def order_rows(rows: list[dict[str, Any]], orderby: str) -> list[dict[str, Any]]:
    """Apply `$orderby=a/b desc, c` (stable, last key first)."""
    for clause in reversed([c.strip() for c in orderby.split(",") if c.strip()]):
        path, _, direction = clause.partition(" ")
        if direction.strip().lower() not in ("", "asc", "desc"):
            raise GraphError(400, "BadRequest", f"Invalid $orderby clause: {clause}")
        present = [r for r in rows if _resolve(r, path) is not None]
        missing = [r for r in rows if _resolve(r, path) is None]
        present.sort(
            key=lambda r: _sort_key(_resolve(r, path)), reverse=direction.strip().lower() == "desc"
        )
        rows = present + missing
    return rows


def _sort_key(value: Any) -> Any:
    parsed = _as_time(value)
    if parsed is not None:
        return (0, parsed.replace(tzinfo=None).isoformat())
    return (1, str(value).lower()) if isinstance(value, str) else (2, value)


def select_fields(row: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return row
    wanted = {s.strip() for s in select.split(",") if s.strip()} | {"id", "@odata.etag"}
    return {k: v for k, v in row.items() if k in wanted}


_EXPAND_SVEP = re.compile(
    r"^singleValueExtendedProperties(?:\(\$filter=(?P<filter>.+)\))?$", re.IGNORECASE
)


def parse_expand(expand: str | None) -> Predicate | None:
    """`$expand=singleValueExtendedProperties($filter=id eq '...')` -> which properties to include.

    Returns None when nothing is expanded; other navigation properties answer 400.
    """
    if not expand:
        return None
    match = _EXPAND_SVEP.match(expand.strip())
    if not match:
        raise GraphError(400, "BadRequest", f"$expand={expand} is not supported by the sandbox")
    return parse_filter(match.group("filter")) if match.group("filter") else (lambda _row: True)
