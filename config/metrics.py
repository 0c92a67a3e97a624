"""Where the provider call metrics live in Redis, shared by the workers that add to them
(`tasks/provider_calls.py`) and the API that serves them on /metrics (`api/provider_calls.py`).

Two hashes under the broker key prefix, fields named by their labels joined with `|`:

- `calsync:metrics:provider_calls`: `provider|operation|status` -> calls made.
- `calsync:metrics:provider_seconds`: `provider|operation|<bucket>` -> calls that took at most
  `BUCKETS[bucket]` seconds and more than the bucket before (`len(BUCKETS)`: longer than all),
  and `provider|operation|sum` -> their seconds added up.

The labels are a registry entry's id (or `wix`), an operation of the provider interfaces and a
status from `STATUSES`: bounded sets, never a tenant, calendar or URL.
"""

from __future__ import annotations

from bisect import bisect_left

CALLS_KEY = "calsync:metrics:provider_calls"
SECONDS_KEY = "calsync:metrics:provider_seconds"
SUM_FIELD = "sum"
# Upper bounds (seconds) of the latency histogram's buckets, from a loopback call to a slow page.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# What a call came to; the last four are the errors.
STATUSES = ("ok", "not_found", "conflict", "cursor_expired",
            "throttled", "transient", "permanent", "error")  # fmt: skip
ERROR_STATUSES = STATUSES[4:]
SEPARATOR = "|"


def field(*labels: str) -> str:
    return SEPARATOR.join(label.replace(SEPARATOR, "_") for label in labels)


def labels_of(name: str | bytes, count: int) -> tuple[str, ...] | None:
    """A field's labels, or None if it is not one of `count` labels."""
    text = name.decode() if isinstance(name, bytes) else name
    parts = tuple(text.split(SEPARATOR))
    return parts if len(parts) == count else None


def bucket_of(seconds: float) -> int:
    """The index of the first bucket whose bound is at least `seconds`."""
    return bisect_left(BUCKETS, seconds)
