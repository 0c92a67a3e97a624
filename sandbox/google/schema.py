"""Request bodies checked against the schemas of the discovery document the client library ships.

Unknown fields and wrong JSON types are answered with 400, as Google does for the JSON it cannot map
onto its resource. `null` is accepted anywhere: in a patch it clears a field.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .errors import ApiError

_DOCUMENT = ("googleapiclient", "discovery_cache/documents/calendar.v3.json")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "number": (int, float),
    "any": (object,),
}


@cache
def discovery_document() -> dict[str, Any]:
    package, path = _DOCUMENT
    text = resources.files(package).joinpath(path).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def validate(body: Any, schema_name: str) -> dict[str, Any]:
    """Return `body` if it fits the named schema, else raise a Google-shaped 400."""
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    schemas = discovery_document()["schemas"]
    _check_object(body, schemas[schema_name], "resource", schemas)
    return body


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], where: str, schemas: dict[str, Any]
) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            _check_value(item, properties[key], f"{where}.{key}", schemas)
        elif extra is not None:
            _check_value(item, extra, f"{where}.{key}", schemas)
        else:
            raise _invalid(f"Unknown name \"{key}\" at '{where}': Cannot find field.")


def _check_value(value: Any, schema: dict[str, Any], where: str, schemas: dict[str, Any]) -> None:
    if value is None:
        return
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type", "object")
    if kind == "object":
        if not isinstance(value, dict):
            raise _wrong_type(where, "TYPE_MESSAGE", value)
        _check_object(value, schema, where, schemas)
    elif kind == "array":
        if not isinstance(value, list):
            raise _wrong_type(where, "TYPE_LIST", value)
        for index, item in enumerate(value):
            _check_value(item, schema.get("items", {}), f"{where}[{index}]", schemas)
    elif kind == "integer":
        _check_integer(value, schema, where)
    elif not isinstance(value, _JSON_TYPES.get(kind, (object,))) or (
        kind == "number" and isinstance(value, bool)
    ):
        raise _wrong_type(where, f"TYPE_{kind.upper()}", value)


def _check_integer(value: Any, schema: dict[str, Any], where: str) -> None:
    # int64 travels as a JSON string; int32 as a number (Google also accepts numeric strings).
    text = value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _wrong_type(where, "TYPE_INT", value)
    if text is not None and not text.lstrip("-").isdigit():
        raise _wrong_type(where, "TYPE_INT", value)
    if schema.get("format") == "int32" and not -(2**31) <= int(value) < 2**31:
        raise _wrong_type(where, "TYPE_INT32", value)


def _wrong_type(where: str, type_name: str, value: Any) -> ApiError:
    return _invalid(f"Invalid value at '{where}' ({type_name}), {json.dumps(value)}")


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid JSON payload received. {detail}")
