"""Record ids in paths. Wix's custom methods put a verb after the id (`connections/{id}:resync`),
so an id never holds a colon: `GET connections/{id}:resync` is not Get Connection of the id
`{id}:resync` but the wrong method on Resync (405, `Allow: POST`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from starlette.convertors import StringConvertor, register_url_convertor

from api.external_calendars.schema import ID_MAX


class RecordIdConvertor(StringConvertor):
    regex = "[^/:]+"


register_url_convertor("record_id", RecordIdConvertor())

CONNECTION = "/connections/{connectionId:record_id}"
CONFLICT = "/conflicts/{conflictId:record_id}"
DEAD_LETTER = "/dead-letters/{deadLetterId:record_id}"
_NO_COLON = "^[^/:\\u0000]+$"  # what the convertor matches, less NUL (refused up front)


def _record_id(alias: str) -> Any:
    return Path(alias=alias, min_length=1, max_length=ID_MAX,
                json_schema_extra={"pattern": _NO_COLON})  # fmt: skip


ConnectionId = Annotated[str, _record_id("connectionId")]
ConflictId = Annotated[str, _record_id("conflictId")]
DeadLetterId = Annotated[str, _record_id("deadLetterId")]
SCHEDULE = "/schedules/{scheduleId:record_id}"
SESSION = "/sessions/{sessionId:record_id}"
ScheduleId = Annotated[str, _record_id("scheduleId")]
# Wix event ids are 36 to 250 characters.
SessionId = Annotated[str, Path(alias="sessionId", min_length=1, max_length=250,
                                json_schema_extra={"pattern": _NO_COLON})]  # fmt: skip
