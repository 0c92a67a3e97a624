"""What `calsync up` prints: a few lines naming each service and its address, then one line per
log record of every child, as text for a person or as JSON lines (`config.logging`).

The children write JSON lines; the supervisor hands each line here with the child's name. What
only the libraries' authors need (their INFO: banners turned log records, a line per task, per
connection, per migration) is left out unless `CALSYNC_LOG_LEVEL=DEBUG`; their warnings and
errors, and everything calsync's own modules log, are shown.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal, TextIO

from config.logging import JsonFormatter, console_line, exception_summary

# A child's line that is not a JSON record, read by a reader of its own (the embedded Redis):
# its level and message, or None for a line not worth showing.
LineReader = Callable[[str], "tuple[str, str] | None"]

OUR_PACKAGES = frozenset(
    {"api", "config", "models", "providers", "sandbox", "sync", "tasks", "workers", "bench"}
)
SHOWN_ALWAYS = logging.WARNING


class Console:
    """One writer for every line `calsync up` prints. Lines that come before the header are
    held until it is out, so a person reads the addresses first."""

    def __init__(
        self, fmt: Literal["json", "text"], *, verbose: bool = False,
        readers: Mapping[str, LineReader] | None = None, stream: TextIO | None = None,
    ) -> None:  # fmt: skip
        self.fmt = fmt
        self.verbose = verbose
        self.readers = dict(readers or {})
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._held: list[str] | None = []
        self._in_traceback: set[str] = set()  # services in the middle of printing one

    def header(self, lines: Iterable[str]) -> None:
        """The addresses and where to look (as they are on a terminal, as records in JSON),
        then whatever was held back."""
        if self.fmt == "text":
            self._write(list(lines), first=True)
        else:
            now = time.time()
            self._write([self._render(now, "up", "INFO", " ".join(line.split()), {})
                         for line in lines], first=True)  # fmt: skip
        self.release()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._emit(held)

    def say(self, message: str) -> None:
        """A line of `calsync up` itself that a person always sees (ready, stopping)."""
        self._write([self._render(time.time(), "up", "INFO", message, {})])

    def child_output(self, service: str, raw: str) -> None:
        """One line a child wrote (stdout and stderr alike)."""
        line = raw.rstrip("\r\n")
        if not line.strip():
            return
        rendered = self._record(service, line)
        if rendered is not None:
            self._write([rendered])

    def _record(self, service: str, line: str) -> str | None:
        entry = _json_record(line)
        if entry is not None:
            level = str(entry.get("level", "INFO"))
            if not self._wanted(level, str(entry.get("logger", ""))):
                return None
            message = str(entry.get("msg", ""))
            if entry.get("exc") and self.fmt == "text":  # JSON keeps the whole traceback
                message += f" ({exception_summary(str(entry['exc']))})"
            return self._render(_timestamp(entry.get("ts")), service, level, message, entry)
        reader = self.readers.get(service)
        read = reader(line) if reader else (self._printed_level(service, line), line)
        if read is None:
            return None
        return self._render(time.time(), service, read[0], read[1], {})

    def _printed_level(self, service: str, line: str) -> str:
        """What a child prints past its log records (a notice, Celery's shutdown line) is
        shown as INFO; a traceback (a crash before logging was set up) as ERROR, line by line,
        up to its exception line."""
        if line.startswith("Traceback (most recent call last)"):
            self._in_traceback.add(service)
        elif service in self._in_traceback and not line[:1].isspace():
            self._in_traceback.discard(service)  # the exception line ends it
        else:
            return "ERROR" if service in self._in_traceback else "INFO"
        return "ERROR"

    def _wanted(self, level: str, logger: str) -> bool:
        if self.verbose or logging.getLevelNamesMapping().get(level, 0) >= SHOWN_ALWAYS:
            return True
        return logger.split(".", 1)[0] in OUR_PACKAGES

    def _render(self, when: float, service: str, level: str, message: str,
                entry: Mapping[str, object]) -> str:  # fmt: skip
        if self.fmt == "text":
            return console_line(when, service, level, message)
        ts = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
        record: dict[str, object] = {"ts": ts, "level": level, "service": service, "msg": message}
        record.update((k, v) for k, v in entry.items() if k not in ("level", "service", "msg"))
        return json.dumps(record, default=str)

    def _write(self, lines: list[str], first: bool = False) -> None:
        with self._lock:
            if self._held is not None and not first:
                self._held.extend(lines)
                return
            self._emit(lines)

    def _emit(self, lines: list[str]) -> None:
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()


class ConsoleHandler(logging.Handler):
    """`calsync up`'s own log records, through the console like a child's (as service `up`)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.child_output("up", self.format(record))
        except Exception:  # a log line must never stop the supervisor
            self.handleError(record)


def _json_record(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "msg" in entry else None


def _timestamp(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()
