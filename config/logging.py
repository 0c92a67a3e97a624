"""Structured logging: one JSON object per line, secrets scrubbed before they reach a handler."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Keys whose values never belong in a log line, wherever they appear in `extra`.
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api_?key|client_state", re.I)
# Bearer tokens and URL credentials that slip into messages.
SECRET_TEXT = re.compile(r"(Bearer\s+)[\w\-.~+/=]+|(://[^:/@\s]+:)[^@\s]+(@)")
STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def scrub(text: str) -> str:
    return SECRET_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + "***" + (m.group(3) or ""), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in STANDARD_ATTRS or key.startswith("_"):
                continue
            entry[key] = "***" if SECRET_KEYS.search(key) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (Celery's hijack is turned off)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "googleapiclient.discovery_cache"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
