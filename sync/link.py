"""A link: the record of one synced pair, and the identities derived from it.

Per side it keeps the id, the version last seen and the content last seen (or written). A
side's content is compared with its own last-seen content, not with the other side's, because
the two differ by design (privacy, overrides) and may lag when a direction is switched off.
`base` is the merged result of the last sync in the origin's terms: the value a field keeps
when neither side changed it. It also carries the intent of a run that stopped midway: where
it differs from what the origin was last seen holding, the origin is owed a write (see
`sync.merge.owed_fields`).

Persist every field: `models/` keeps one row per link with unique (connection, wix_id) and
(connection, external_id); the three snapshots and the overrides fit JSON (`sync.codec`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sync.event import CanonicalEvent, ExternalCalendarOverrides
from sync.side import Side
from sync.snapshot import RemoteEvent

_NAMESPACE = uuid.UUID("5c0b7a52-3f7e-4d36-9a65-0d1f3c6f2a11")
_MARKER_PREFIX = "calsync"


def link_id_for(owner_id: str, side: Side, source_id: str) -> str:
    """Deterministic, so a replayed plan names the same link (and the same create key)."""
    return str(uuid.uuid5(_NAMESPACE, f"{owner_id}\x1f{side.value}\x1f{source_id}"))


def idempotency_key(link_id: str, generation: int) -> str:
    return f"{link_id}:{generation}"


@dataclass(frozen=True)
class Marker:
    """calsync's back-reference on every event it creates: which owner (synced
    calendar), which link."""

    owner_id: str
    link_id: str

    def encode(self) -> str:
        return f"{_MARKER_PREFIX}:{self.owner_id}:{self.link_id}"

    @classmethod
    def parse(cls, text: str | None) -> Marker | None:
        if not text or not text.startswith(f"{_MARKER_PREFIX}:"):
            return None
        owner_id, sep, link_id = text[len(_MARKER_PREFIX) + 1 :].rpartition(":")
        if not sep or not owner_id or not link_id:
            return None
        return cls(owner_id, link_id)


@dataclass(frozen=True)
class Link:
    link_id: str
    origin: Side
    base: CanonicalEvent
    wix_id: str | None = None
    external_id: str | None = None
    wix_version: str | None = None
    external_version: str | None = None
    wix_seen: CanonicalEvent | None = None
    external_seen: CanonicalEvent | None = None
    wix_overrides: ExternalCalendarOverrides | None = None
    generation: int = 0
    # The copy was removed on purpose (its origin stopped blocking time) and comes back under
    # the next generation if the origin qualifies again.
    tombstone: bool = False

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.link_id, self.generation)

    def id_on(self, side: Side) -> str | None:
        return self.wix_id if side is Side.WIX else self.external_id

    def version_on(self, side: Side) -> str | None:
        return self.wix_version if side is Side.WIX else self.external_version

    def seen_on(self, side: Side) -> CanonicalEvent | None:
        return self.wix_seen if side is Side.WIX else self.external_seen

    def with_side(
        self,
        side: Side,
        event_id: str | None,
        version: str | None,
        seen: CanonicalEvent | None,
        overrides: ExternalCalendarOverrides | None = None,
    ) -> Link:
        if side is Side.WIX:
            return replace(
                self, wix_id=event_id, wix_version=version, wix_seen=seen, wix_overrides=overrides
            )
        return replace(self, external_id=event_id, external_version=version, external_seen=seen)

    def observed(self, side: Side, remote: RemoteEvent) -> Link:
        """The link once `remote` is what `side` holds (read from a snapshot or a write)."""
        return self.with_side(side, remote.id, remote.version, remote.event, remote.overrides)

    def written(self, side: Side, remote: RemoteEvent) -> Link:
        """The link once a write to `side` returned `remote`. What the origin accepted is the
        agreed state from then on: a provider that coerces a value must not make the merge
        result look forever unwritten."""
        link = self.observed(side, remote)
        if side is self.origin and remote.event is not None:
            link = replace(link, base=remote.event)
        return link

    def without_copy(self, side: Side) -> Link:
        """The link once the copy on `side` is removed on purpose."""
        return replace(self.with_side(side, None, None, None), tombstone=True)
