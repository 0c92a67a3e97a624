"""The sync engine converges: a Hypothesis state machine over two in-memory calendars.

People create, edit and delete events on both sides (series and exceptions included), set
Wix overrides, and servers bump versions. Syncs run in between, incremental or full, with
change notices lost, duplicated, late or shuffled, writes failing, etags going stale, cursors
expiring and the process dying midway. At the end one full reconciliation runs, and:

- a second reconciliation has nothing left to do (no ping-pong);
- every link joins two live events (or is a tombstone of an event that stopped blocking time);
- no event exists twice: every copy is linked, no two copies share a link;
- every copy equals what the mapping makes of its origin (checked against an oracle written
  here, not against sync.mapping);
- every event that should be synced is, within the directions the connection allows;
- nothing was ever written to a side the connection may not write (read-only calendars);
- a side the mass-deletion guard stopped is neither written nor has its deletions copied;
- every edit and every deletion is present, superseded by a later one, recorded as a
  conflict it lost, or undone by design (an edit of a derived field, or of a mirror whose
  origin may not be written).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sync_runner import Connection

from providers.errors import PreconditionFailed, TransientError
from providers.local.memory import Faults, MemoryCalendar, SimulatedCrash, ticking_clock
from sync.actions import PlanResult
from sync.deletions import deleted_in
from sync.errors import MassDeletionSuspected
from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Field,
    FieldValue,
    Recurrence,
    Transparency,
    When,
    same_content,
    same_value,
    value_of,
    with_value,
)
from sync.link import Marker, link_id_for
from sync.merge import DELETED, Conflict
from sync.policy import ConflictPolicy, ConnectionPolicy, MassDeleteGuard, Privacy
from sync.side import Side
from sync.snapshot import RemoteEvent

pytestmark = pytest.mark.timeout(3600)  # the `long` profile runs for minutes

CONNECTION = "conn-1"
T0 = datetime(2025, 3, 3, 8, tzinfo=UTC)
D0 = date(2025, 3, 3)
CHECKED = (Field.TITLE, Field.DESCRIPTION, Field.LOCATION, Field.WHEN)  # unique values only
sides = st.sampled_from(list(Side))
chances = st.sampled_from([0.0, 0.0, 0.3, 1.0])


@dataclass(frozen=True)
class UserOp:
    seq: int
    key: str  # the pair's link id
    side: Side
    kind: str  # "edit" | "delete" | "override" | "series deleted"
    field: Field | None = None
    value: FieldValue | None = None
    # A copy deleted before any run recorded its link (a run died right after making it)
    # comes back: the engine cannot tell it from a copy it has yet to make.
    unrecorded_copy: bool = False


def when_value(n: int, all_day: bool, time_zone: str | None) -> When:
    if all_day:
        start = D0 + timedelta(days=n)
        return When(start, start + timedelta(days=1), True, time_zone)
    begin = T0 + timedelta(minutes=37 * n)
    return When(begin, begin + timedelta(hours=1), False, time_zone)


def new_value(field: Field, event: CanonicalEvent, n: int, all_day: bool) -> FieldValue:
    match field:
        case Field.TITLE:
            return f"title {n}"
        case Field.DESCRIPTION:
            return f"about {n}"
        case Field.LOCATION:
            return f"room {n}"
        case Field.WHEN:
            return when_value(n, all_day, event.time_zone)
        case Field.STATUS:
            flip = event.status is EventStatus.CONFIRMED
            return EventStatus.CANCELLED if flip else EventStatus.CONFIRMED
    flip = event.transparency is Transparency.BUSY
    return Transparency.FREE if flip else Transparency.BUSY


# -- the oracle: what the mapping must produce, written independently of sync.mapping ---------


def blocks_time(event: CanonicalEvent, policy: ConnectionPolicy) -> bool:
    if event.all_day and not policy.block_all_day:
        return False
    return event.transparency is Transparency.BUSY or policy.block_free


def _set(text: str | None) -> bool:
    return bool(text and text.strip())


def both_cancelled(copy: CanonicalEvent, expected: CanonicalEvent) -> bool:
    """A cancelled occurrence shows nothing: its copy is right once it is cancelled too (a
    calendar may keep only its date, and read it back with the series' fields)."""
    cancelled = EventStatus.CANCELLED
    return copy.is_instance and copy.status is cancelled and expected.status is cancelled


def expected_copy(
    origin: Side,
    event: CanonicalEvent,
    overrides: ExternalCalendarOverrides | None,
    policy: ConnectionPolicy,
    series_copy_id: str | None,
) -> CanonicalEvent:
    title, description, location = event.title, event.description, event.location
    if policy.privacy is Privacy.BUSY_ONLY:
        title, description, location = "Busy", "", ""
    elif origin is Side.WIX and overrides is not None:
        title = overrides.title if overrides.title and _set(overrides.title) else title
        if overrides.description and _set(overrides.description):
            description = overrides.description
    transparency = event.transparency if origin is Side.WIX else Transparency.BUSY
    recurrence = event.recurrence
    if recurrence is not None and recurrence.series_id is not None:
        recurrence = replace(recurrence, series_id=series_copy_id)
    return replace(
        event,
        title=title,
        description=description,
        location=location,
        transparency=transparency,
        recurrence=recurrence,
    )


def flows_back(
    origin: Side, field: Field, policy: ConnectionPolicy, ov: ExternalCalendarOverrides | None
) -> bool:
    """Does an edit of `field` on the copy reach the origin?"""
    if policy.write_block(origin) is not None:
        return False
    if field in (Field.WHEN, Field.STATUS):
        return True
    if field is Field.TRANSPARENCY:
        return origin is Side.WIX
    if policy.privacy is Privacy.BUSY_ONLY:
        return False
    has_override = origin is Side.WIX and ov is not None
    if field is Field.TITLE:
        return not (has_override and ov is not None and _set(ov.title))
    if field is Field.DESCRIPTION:
        return not (has_override and ov is not None and _set(ov.description))
    return True


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.ops: list[UserOp] = []
        self.conflicts: list[Conflict] = []
        self.authored: set[tuple[Side, str]] = set()
        self.conn: Connection | None = None
        self._pairs: dict[str, list[RemoteEvent]] | None = None  # filled at the end
        self._origins: dict[str, tuple[Side, str]] | None = None

    # -- setup ----------------------------------------------------------------------------

    @initialize(
        privacy=st.sampled_from(list(Privacy)),
        conflicts=st.sampled_from(list(ConflictPolicy)),
        import_enabled=st.sampled_from([True, True, True, False]),
        export_enabled=st.sampled_from([True, True, True, False]),
        read_only=st.sampled_from([False, False, False, True]),
        block_all_day=st.booleans(),
        block_free=st.booleans(),
        skew=st.sampled_from([0, 5, 3600]),
        seed=st.integers(0, 1000),
        initial=st.lists(st.tuples(sides, st.booleans(), st.booleans()), max_size=8),
        guard=st.sampled_from([None, MassDeleteGuard(min_links=4, max_share=0.5)]),
    )
    def connect(
        self,
        privacy: Privacy,
        conflicts: ConflictPolicy,
        import_enabled: bool,
        export_enabled: bool,
        read_only: bool,
        block_all_day: bool,
        block_free: bool,
        skew: int,
        seed: int,
        initial: list[tuple[Side, bool, bool]],
        guard: MassDeleteGuard | None,
    ) -> None:
        clock = ticking_clock()  # one clock for both sides: latest_wins compares them
        wix = MemoryCalendar("wix", clock=clock, seed=seed)
        external = MemoryCalendar("ext", read_only=read_only, clock=clock, seed=seed + 1)
        policy = ConnectionPolicy(
            CONNECTION,
            "google",
            import_enabled=import_enabled,
            export_enabled=export_enabled,
            read_only=read_only,
            privacy=privacy,
            block_all_day=block_all_day,
            block_free=block_free,
            conflict_policy=conflicts,
            clock_skew=timedelta(seconds=skew),
            mass_delete=guard or MassDeleteGuard(min_links=10**9),
        )
        self.conn = Connection(wix, external, policy)
        for side, all_day, free in initial:  # a calendar in use, synced once without faults
            self.add_event(side, all_day, free, series=False, time_zone=None)
        self.connection.sync()

    @property
    def connection(self) -> Connection:
        assert self.conn is not None
        return self.conn

    def store(self, side: Side) -> MemoryCalendar:
        store = self.connection.store(side)
        assert isinstance(store, MemoryCalendar)
        return store

    def next_n(self) -> int:
        self.n += 1
        return self.n

    def key_of(self, side: Side, remote: RemoteEvent) -> str:
        if (side, remote.id) in self.authored:
            return link_id_for(CONNECTION, side, remote.id)
        marker = Marker.parse(remote.marker)
        assert marker is not None, f"{remote.id} was made by nobody"
        return marker.link_id

    def pick(self, side: Side, data: st.DataObject) -> RemoteEvent | None:
        live = list(self.store(side).events().values())
        return data.draw(st.sampled_from(live)) if live else None

    # -- people using their calendars -----------------------------------------------------

    @rule(
        side=sides,
        all_day=st.booleans(),
        free=st.booleans(),
        series=st.booleans(),
        time_zone=st.sampled_from([None, "Europe/Berlin"]),
    )
    def add_event(
        self, side: Side, all_day: bool, free: bool, series: bool, time_zone: str | None
    ) -> None:
        n = self.next_n()
        event = CanonicalEvent(
            title=f"title {n}",
            start=T0,
            end=T0,
            description=f"about {n}",
            location=f"room {n}",
            transparency=Transparency.FREE if free else Transparency.BUSY,
            recurrence=Recurrence(rule="FREQ=WEEKLY;BYDAY=MO") if series else None,
        ).with_when(when_value(n, all_day, time_zone))
        remote = self.store(side).add(event)
        self.authored.add((side, remote.id))

    @rule(side=sides, data=st.data())
    def add_exception(self, side: Side, data: st.DataObject) -> None:
        series = [
            r
            for r in self.store(side).events().values()
            if r.event is not None and r.event.recurrence is not None and r.event.recurrence.rule
        ]
        if not series:
            return
        master = data.draw(st.sampled_from(series))
        assert master.event is not None
        n = self.next_n()
        slot = master.event.start + timedelta(days=7 * n)
        event = replace(
            master.event,
            title=f"title {n}",
            recurrence=Recurrence(series_id=master.id, original_start=slot),
        )
        # Providers copy a series' private properties to its exceptions.
        remote = self.store(side).add(event, marker=master.marker)
        self.authored.add((side, remote.id))

    @rule(side=sides, field=st.sampled_from(list(Field)), all_day=st.booleans(), data=st.data())
    def edit_event(self, side: Side, field: Field, all_day: bool, data: st.DataObject) -> None:
        target = self.pick(side, data)
        if target is None or target.event is None:
            return
        n = self.next_n()
        edited = with_value(target.event, field, new_value(field, target.event, n, all_day))
        self.store(side).edit(target.id, edited)
        key = self.key_of(side, target)
        unrecorded = self.unrecorded(side, target.id, key)
        self.ops.append(UserOp(n, key, side, "edit", field, value_of(edited, field),
                               unrecorded_copy=unrecorded))  # fmt: skip

    def unrecorded(self, side: Side, event_id: str, key: str) -> bool:
        """A copy calsync made whose link a crash kept it from recording."""
        link = self.connection.links.get(key)
        return (side, event_id) not in self.authored and (
            link is None or link.id_on(side) != event_id)  # fmt: skip

    @rule(field=st.sampled_from(CHECKED), all_day=st.booleans(), data=st.data())
    def edit_both_sides(self, field: Field, all_day: bool, data: st.DataObject) -> None:
        """The same field of a synced pair, edited on both sides before any sync sees it."""
        pairs = [
            link
            for link in self.connection.links.values()
            if all(link.id_on(s) in self.live(s) for s in Side)
        ]
        if not pairs:
            return
        link = data.draw(st.sampled_from(sorted(pairs, key=lambda link: link.link_id)))
        for side in Side:
            event_id = link.id_on(side)
            assert event_id is not None
            remote = self.live(side)[event_id]
            assert remote.event is not None
            n = self.next_n()
            edited = with_value(remote.event, field, new_value(field, remote.event, n, all_day))
            self.store(side).edit(event_id, edited)
            self.ops.append(UserOp(n, link.link_id, side, "edit", field, value_of(edited, field)))

    @rule(side=sides, data=st.data())
    def delete_event(self, side: Side, data: st.DataObject) -> None:
        target = self.pick(side, data)
        if target is None:
            return
        store = self.store(side)
        before = store.events()
        n = self.next_n()
        # Deleting a series deletes its instances, on both sides once synced: a person meant
        # that, so it supersedes the instances' earlier edits wherever they were made.
        key = self.key_of(side, target)
        series_ids = {r.id for s in Side for r in self.store(s) if self.key_of(s, r) == key}
        for other in Side:
            for remote in self.store(other):
                rec = remote.event.recurrence if remote.event else None
                if rec is not None and rec.series_id in series_ids:
                    op = UserOp(n, self.key_of(other, remote), other, "series deleted")
                    self.ops.append(op)
        store.remove(target.id)  # a series takes its instances along
        for event_id, remote in before.items():
            if event_id not in store.events():
                key = self.key_of(side, remote)
                unrecorded = self.unrecorded(side, event_id, key)
                self.ops.append(UserOp(n, key, side, "delete", unrecorded_copy=unrecorded))

    @rule(title=st.booleans(), description=st.booleans(), data=st.data())
    def set_overrides(self, title: bool, description: bool, data: st.DataObject) -> None:
        target = self.pick(Side.WIX, data)
        if target is None:
            return
        n = self.next_n()
        overrides = ExternalCalendarOverrides(
            title=f"shown {n}" if title else None,
            description=f"shown about {n}" if description else None,
        )
        self.store(Side.WIX).set_overrides(target.id, overrides if title or description else None)
        self.ops.append(UserOp(n, self.key_of(Side.WIX, target), Side.WIX, "override"))

    @rule(side=sides, data=st.data())
    def server_bumps_version(self, side: Side, data: st.DataObject) -> None:
        target = self.pick(side, data)
        if target is not None:
            self.store(side).touch(target.id)

    @rule(side=sides)
    def cursor_expires(self, side: Side) -> None:
        self.store(side).expire_cursors()

    # -- syncs, with faults ---------------------------------------------------------------

    @rule(
        full=st.sampled_from([False, False, False, True]),
        drop=chances,
        duplicate=chances,
        delay=chances,
        shuffle=st.booleans(),
        crash=st.none() | st.tuples(sides, st.integers(0, 4), st.booleans()),
        failing=st.none() | st.tuples(sides, st.integers(1, 3), st.booleans()),
    )
    def sync(
        self,
        full: bool,
        drop: float,
        duplicate: float,
        delay: float,
        shuffle: bool,
        crash: tuple[Side, int, bool] | None,
        failing: tuple[Side, int, bool] | None,
    ) -> None:
        for side in Side:
            self.store(side).faults = Faults(
                drop_notices=drop,
                duplicate_notices=duplicate,
                delay_notices=delay,
                shuffle_notices=shuffle,
            )
        if crash is not None:
            faults = self.store(crash[0]).faults
            faults.crash_after_writes, faults.crash_after_applying = crash[1], crash[2]
        if failing is not None:
            faults = self.store(failing[0]).faults
            faults.fail_writes = failing[1]
            faults.failure = PreconditionFailed("stale") if failing[2] else TransientError("503")
        with contextlib.suppress(SimulatedCrash):  # the run died midway; links stay as saved
            self.connection.sync(full=full)
        last = self.connection.last_plan
        if last is not None:
            self.conflicts.extend(last.conflicts)
            self.check_guard(last)
        for side in Side:
            self.store(side).faults = Faults()

    def check_guard(self, result: PlanResult) -> None:
        """A side the mass-deletion guard stopped is neither read nor written."""
        for error in result.errors:
            assert isinstance(error, MassDeletionSuspected) and error.flagged
            assert error.linked >= 4 and error.vanished * 2 > error.linked
            for action in result.writes:
                assert action.side is not error.side, action
                assert action.reason is not deleted_in(error.side), action

    # -- invariants that hold at every step -----------------------------------------------

    @invariant()
    def never_writes_where_it_may_not(self) -> None:
        if self.conn is None:
            return
        for side in Side:
            if self.connection.policy.write_block(side) is not None:
                assert self.store(side).writes == 0, f"calsync wrote to {side}"

    @invariant()
    def never_two_copies(self) -> None:
        if self.conn is None:
            return
        for side in Side:
            seen: set[str] = set()
            for remote in self.store(side):
                if (side, remote.id) in self.authored:
                    continue
                marker = Marker.parse(remote.marker)
                assert marker is not None
                assert marker.link_id not in seen, f"two copies of {marker.link_id} on {side}"
                seen.add(marker.link_id)

    @invariant()
    def links_are_one_to_one(self) -> None:
        if self.conn is None:
            return
        for side in Side:
            ids = [i for link in self.connection.links.values() if (i := link.id_on(side))]
            assert len(ids) == len(set(ids)), f"two links share an event on {side}"

    # -- the end: reconcile, then everything must agree -----------------------------------

    def teardown(self) -> None:
        if self.conn is None:
            return
        first, applied = self.connection.sync(full=True, allow_mass_delete=True)  # confirmed
        self.conflicts.extend(first.conflicts)
        assert not applied.failed, applied.failed
        second, _ = self.connection.sync(full=True, allow_mass_delete=True)
        assert second.actions == (), f"reconciliation did not converge: {second.actions}"
        assert second.conflicts == ()
        assert second.errors == ()
        self.check_links()
        self.check_copies_are_linked()
        self.check_everything_synced()
        self.check_edits()
        self.check_deletions()

    def live(self, side: Side) -> dict[str, RemoteEvent]:
        return self.store(side).events()

    def check_links(self) -> None:
        policy = self.connection.policy
        for link in self.connection.links.values():
            origin, copy_side = link.origin, link.origin.other
            origin_id = link.id_on(origin)
            assert origin_id is not None and origin_id in self.live(origin), link
            source = self.live(origin)[origin_id]
            assert source.event is not None
            if link.tombstone:
                assert link.id_on(copy_side) is None
                assert not self.should_sync(origin, source), f"{link} should have a copy"
                continue
            copy_id = link.id_on(copy_side)
            assert copy_id is not None and copy_id in self.live(copy_side), link
            copy = self.live(copy_side)[copy_id].event
            assert copy is not None
            expected = expected_copy(
                origin, source.event, source.overrides, policy, self.series_copy_id(source)
            )
            assert same_content(copy, expected) or both_cancelled(copy, expected), (
                f"copy {copy} != expected {expected}"
            )
            if origin is Side.EXTERNAL:
                assert blocks_time(source.event, policy)

    def series_copy_id(self, origin_item: RemoteEvent) -> str | None:
        rec = origin_item.event.recurrence if origin_item.event else None
        if rec is None or rec.series_id is None:
            return None
        for link in self.connection.links.values():
            for side in Side:
                if link.id_on(side) == rec.series_id and origin_item.id in self.live(side):
                    return link.id_on(side.other)
        return None

    def check_copies_are_linked(self) -> None:
        for side in Side:
            for remote in self.store(side):
                if (side, remote.id) in self.authored:
                    continue
                marker = Marker.parse(remote.marker)
                assert marker is not None
                link = self.connection.links.get(marker.link_id)
                assert link is not None and link.id_on(side) == remote.id, f"orphan {remote}"

    def should_sync(self, side: Side, remote: RemoteEvent) -> bool:
        event = remote.event
        policy = self.connection.policy
        assert event is not None
        if policy.write_block(side.other) is not None:
            return False
        if side is Side.EXTERNAL and not blocks_time(event, policy):
            return False
        rec = event.recurrence
        if rec is None or rec.series_id is None:
            return True
        series = self.live(side).get(rec.series_id)
        if series is None:
            return False
        if (side, series.id) not in self.authored:
            return True  # the series is itself a copy
        link = self.connection.links.get(link_id_for(CONNECTION, side, series.id))
        return link is not None and not link.tombstone

    def check_everything_synced(self) -> None:
        for side, event_id in sorted(self.authored):
            remote = self.live(side).get(event_id)
            if remote is None or remote.event is None:
                continue
            link = self.connection.links.get(link_id_for(CONNECTION, side, event_id))
            should = self.should_sync(side, remote)
            if remote.event.status is EventStatus.CANCELLED and not remote.event.is_instance:
                continue  # copied only if it was live when first seen
            active = link is not None and not link.tombstone
            assert active == should, f"{side} {remote}: linked={active}, should={should}"

    def pair(self, key: str) -> list[RemoteEvent]:
        """The live events of the pair `key` names, on either side."""
        if self._pairs is None:
            self._pairs = {}
            for side in Side:
                for remote in self.store(side):
                    self._pairs.setdefault(self.key_of(side, remote), []).append(remote)
        return self._pairs.get(key, [])

    def origin_of(self, key: str) -> tuple[Side, str] | None:
        if self._origins is None:
            self._origins = {link_id_for(CONNECTION, s, i): (s, i) for s, i in self.authored}
        return self._origins.get(key)

    def later_op(self, op: UserOp) -> bool:
        for other in self.ops:
            if other.seq <= op.seq or other.key != op.key:
                continue
            if other.kind in ("delete", "series deleted") or op.kind == "delete":
                return True
            if other.kind == "edit" and other.field is op.field:
                return True
            if other.kind == "override" and op.field in (Field.TITLE, Field.DESCRIPTION):
                return True
        return False

    def lost_conflict(self, op: UserOp) -> bool:
        for c in self.conflicts:
            if c.link_id != op.key or c.winner is op.side:
                continue
            if c.field == DELETED:
                return True
            if op.field is None or op.value is None or c.field != op.field.value:
                continue
            lost = c.value_on(op.side)
            comparable = lost is not None and not isinstance(lost, CanonicalEvent)
            if comparable and same_value(lost, op.value):  # type: ignore[arg-type]
                return True
        return False

    def check_edits(self) -> None:
        policy = self.connection.policy
        for op in self.ops:
            if op.kind != "edit" or op.field not in CHECKED or self.later_op(op):
                continue
            assert op.field is not None and op.value is not None
            field, value = op.field, op.value
            pair = self.pair(op.key)
            if any(r.event and same_value(value_of(r.event, field), value) for r in pair):
                continue
            if self.lost_conflict(op):
                continue
            origin = self.origin_of(op.key)
            if op.unrecorded_copy and (origin is None or origin[1] not in self.live(origin[0])):
                # A copy whose link a crash kept calsync from recording holds nothing to tell a
                # person's edit from calsync's own write; once its origin is gone, it is removed
                # as the orphan it is.
                continue
            if origin is not None and op.side is not origin[0]:
                source = self.live(origin[0]).get(origin[1])
                overrides = source.overrides if source is not None else None
                if not flows_back(origin[0], field, policy, overrides):
                    continue  # a derived field or a mirror: reverted by design
            raise AssertionError(f"edit lost without a conflict: {op}; pair now {pair}")

    def check_deletions(self) -> None:
        policy = self.connection.policy
        for op in self.ops:
            if op.kind != "delete" or op.unrecorded_copy or self.later_op(op):
                continue
            if not self.pair(op.key) or self.lost_conflict(op):
                continue
            if policy.write_block(op.side.other) is not None:
                continue  # the deletion may not travel; a copy may come back as a mirror
            origin = self.origin_of(op.key)
            if origin is not None and op.side is not origin[0]:
                source = self.live(origin[0]).get(origin[1])
                if (
                    source is not None
                    and source.event is not None
                    and not self.should_sync(origin[0], source)
                ):
                    continue  # the copy was gone anyway
            raise AssertionError(f"deletion undone without a conflict: {op}")


TestSyncConverges = SyncMachine.TestCase
