"""Reason codes: every action, skipped change, conflict and error says why, in one word.

They end up in the sync run's record, so they are stable strings; add codes, never rename them.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # creates
    CREATED_IN_WIX = "CREATED_IN_WIX"
    CREATED_EXTERNALLY = "CREATED_EXTERNALLY"
    ADOPTED_COPY = "ADOPTED_COPY"  # a copy an interrupted run made is linked, not made again
    STARTED_BLOCKING = "STARTED_BLOCKING"  # an external event qualifies again: its block returns
    RECREATED_AFTER_DELETE = "RECREATED_AFTER_DELETE"  # origin changed, the copy had been deleted
    RESTORED_MIRROR = "RESTORED_MIRROR"  # a one-way copy was deleted; the origin cannot follow
    # updates
    UPDATED_IN_WIX = "UPDATED_IN_WIX"
    UPDATED_EXTERNALLY = "UPDATED_EXTERNALLY"
    MERGED = "MERGED"  # both sides changed different fields
    CONFLICT_WIX_WINS = "CONFLICT_WIX_WINS"
    CONFLICT_EXTERNAL_WINS = "CONFLICT_EXTERNAL_WINS"
    REVERTED_DERIVED_FIELD = "REVERTED_DERIVED_FIELD"  # edit of a field that is not synced back
    REVERTED_MIRROR = "REVERTED_MIRROR"  # edit of a copy whose origin may not be written
    RESYNC = "RESYNC"  # nothing changed, but the copy differs (policy change, unfinished run)
    # deletes
    DELETED_IN_WIX = "DELETED_IN_WIX"
    DELETED_EXTERNALLY = "DELETED_EXTERNALLY"
    DELETE_WINS = "DELETE_WINS"  # a deletion beat an edit (the origin's, or its series')
    DELETED_ON_BOTH = "DELETED_ON_BOTH"
    NO_LONGER_BLOCKING = "NO_LONGER_BLOCKING"  # became free, all-day or declined: its block goes
    WITH_ITS_SERIES = "WITH_ITS_SERIES"  # an instance goes when its series is deleted
    ORPHANED_COPY = "ORPHANED_COPY"  # our copy that no link owns (source gone, or a twin)
    COPY_WITHDRAWN = "COPY_WITHDRAWN"  # its direction was switched off in the sync config
    DISCONNECTED = "DISCONNECTED"  # the connection ended: calsync takes back all it made
    # bookkeeping and skips
    ECHO = "ECHO"  # our own write coming back, or a version bump without a content change
    IN_SYNC = "IN_SYNC"  # a change that needs no write (e.g. both sides made the same one)
    OWN_EVENT = "OWN_EVENT"  # made by calsync: never imported back as new
    READ_ONLY = "READ_ONLY"
    IMPORT_DISABLED = "IMPORT_DISABLED"
    EXPORT_DISABLED = "EXPORT_DISABLED"
    ALL_DAY_NOT_BLOCKING = "ALL_DAY_NOT_BLOCKING"
    FREE_NOT_BLOCKING = "FREE_NOT_BLOCKING"
    DECLINED_NOT_BLOCKING = "DECLINED_NOT_BLOCKING"  # the calendar's owner declined it
    CANCELLED = "CANCELLED"  # a new event that is already cancelled: nothing to copy
    SERIES_NOT_LINKED = "SERIES_NOT_LINKED"  # an exception whose series has no copy yet
    UNKNOWN_DELETED = "UNKNOWN_DELETED"  # a deletion notice for something we never linked
    MASS_DELETE_GUARD = "MASS_DELETE_GUARD"
    UNREADABLE = "UNREADABLE"  # exists but cannot be read: its copy stays as last seen
