from __future__ import annotations

import json
import logging
import re
import sys

from config.logging import JsonFormatter, TextFormatter


def render(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("calsync.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_log_lines_are_json_with_extra_fields() -> None:
    line = render("synced %s", "cal-1", connection_id="c1", applied=3)
    assert line["msg"] == "synced cal-1"
    assert line["connection_id"] == "c1"
    assert line["applied"] == 3
    assert line["level"] == "INFO"


def test_secret_fields_and_tokens_never_reach_the_log() -> None:
    line = render(
        "calling with Bearer ya29.abcDEF-123 via redis://user:hunter2@host:6379/0",
        access_token="ya29.secret", password="hunter2", client_state="cs-1",
    )  # fmt: skip
    text = json.dumps(line)
    for secret in ("ya29.abcDEF-123", "ya29.secret", "hunter2", "cs-1"):
        assert secret not in text
    assert "Bearer ***" in str(line["msg"])


def test_a_text_line_is_time_source_level_message_and_a_traceback_follows() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord("tasks.runner", logging.ERROR, __file__, 1, "run %s\nfailed",
                                   ("r1",), sys.exc_info())  # fmt: skip
    first, *trace = TextFormatter("worker").format(record).splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d worker ERROR   run r1 failed", first)
    assert trace[0].startswith("Traceback") and trace[-1] == "ValueError: bad value"
    assert TextFormatter().format(record).split()[1] == "tasks.runner"  # no service: the logger


def test_a_json_line_names_its_service_when_it_has_one() -> None:
    record = logging.LogRecord("api.app", logging.INFO, __file__, 1, "up", None, None)
    assert json.loads(JsonFormatter("api").format(record))["service"] == "api"
    assert "service" not in json.loads(JsonFormatter().format(record))
