"""The CalDAV change cursor: what an incremental listing needs from the last one, compactly.

- `token`: the RFC 6578 sync token; or, on a server without sync-collection, the collection's
  CTag, with `etags` (each member's name and a short digest of its ETag) for the listing diff.
- `series`: for each recurring resource, whether it is ours and the slot keys listed last time,
  so slots that disappear (a deleted resource, an occurrence cut from a rule) can be reported
  as deleted, and anyone else's series can be expanded again when the window moves on.
- `window`: the sync window of the last listing (epoch seconds).

Text form: `cd1.` + base64url(zlib(JSON)). A cursor that does not decode is an expired one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass, field

from providers.base import SyncWindow
from providers.errors import CursorExpired

_PREFIX = "cd1."
SYNC, CTAG = "sync", "ctag"


@dataclass
class SeriesSeen:
    ours: bool
    keys: list[str]


@dataclass
class Cursor:
    mode: str  # SYNC or CTAG
    token: str
    window: tuple[int, int]
    etags: dict[str, str] = field(default_factory=dict)
    series: dict[str, SeriesSeen] = field(default_factory=dict)

    def encode(self) -> str:
        data = {
            "m": self.mode, "t": self.token, "w": list(self.window), "e": self.etags,
            "s": {name: [int(s.ours), *s.keys] for name, s in sorted(self.series.items())},
        }  # fmt: skip
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return _PREFIX + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not text.startswith(_PREFIX):
            raise CursorExpired("not a CalDAV cursor")
        body = text[len(_PREFIX) :]
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            data = json.loads(raw)
            series = {
                name: SeriesSeen(bool(entry[0]), [str(k) for k in entry[1:]])
                for name, entry in data["s"].items()
            }
            start, end = (int(x) for x in data["w"])
            return cls(str(data["m"]), str(data["t"]), (start, end), dict(data["e"]), series)
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error, zlib.error):
            raise CursorExpired("unreadable CalDAV cursor") from None


def window_seconds(window: SyncWindow) -> tuple[int, int]:
    return int(window.start.timestamp()), int(window.end.timestamp())


def etag_digest(etag: str | None) -> str:
    """Eight hex digits of an ETag: enough to notice a change, small in the cursor."""
    return hashlib.sha1((etag or "").encode()).hexdigest()[:8]
