"""Logging: JSON lines for machines, one short line per record for people; secrets scrubbed
before they reach a handler.

`CALSYNC_LOG_FORMAT` is `json`, `text` or `auto` (the default): `auto` writes text to a terminal
and JSON lines to anything else (a pipe, a file, a container's log driver).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "json", "text"]

# Keys whose values never belong in a log line, wherever they appear in `extra`.
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api_?key|client_state", re.I)
# Bearer tokens and URL credentials that slip into messages.
SECRET_TEXT = re.compile(r"(Bearer\s+)[\w\-.~+/=]+|(://[^:/@\s]+:)[^@\s]+(@)")
STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# Libraries that log every request or every connection at INFO.
NOISY = ("httpx", "httpcore", "urllib3", "googleapiclient.discovery_cache")


def scrub(text: str) -> str:
    return SECRET_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + "***" + (m.group(3) or ""), text)


def resolve_format(fmt: str, stream: TextIO) -> Literal["json", "text"]:
    """`auto`: text for a person at a terminal, JSON lines for everything else."""
    if fmt == "auto":
        return "text" if stream.isatty() else "json"
    return "text" if fmt == "text" else "json"


def console_line(when: float, source: str, level: str, message: str) -> str:
    """The one line a person reads: local time, who says it, level, message on one line."""
    clock = datetime.fromtimestamp(when).strftime("%H:%M:%S")
    flat = " ".join(message.split())
    return f"{clock} {source:<6} {level:<7} {flat}"


def exception_summary(trace: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
        }
        if self.service:
            entry["service"] = self.service
        entry["logger"] = record.name
        entry["msg"] = scrub(record.getMessage())
        for key, value in vars(record).items():
            if key in STANDARD_ATTRS or key.startswith("_"):
                continue
            entry[key] = "***" if SECRET_KEYS.search(key) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`console_line`, named by the service when there is one, else by the logger. A traceback
    follows on the next lines: a process on its own is read for debugging."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = console_line(record.created, self.service or record.name, record.levelname,
                            record.getMessage())  # fmt: skip
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def formatter(fmt: str, stream: TextIO, service: str | None = None) -> logging.Formatter:
    if resolve_format(fmt, stream) == "json":
        return JsonFormatter(service)
    return TextFormatter(service)


def configure_logging(
    level: str = "INFO", fmt: str = "auto", service: str | None = None,
    handler: logging.Handler | None = None,
) -> None:  # fmt: skip
    """Install one handler on the root logger (Celery's hijack is turned off): `handler`, or a
    stderr handler in `fmt`. Python warnings become log records, so they are formatted too."""
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter(fmt, sys.stderr, service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
