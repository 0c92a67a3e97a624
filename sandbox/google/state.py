"""The sandbox's whole in-memory world, behind one lock.

Routes call the same methods tests call from Python; with `caller=None` a method acts as the
calendar's owner (as if someone edited the calendar in Google's own UI), which is how tests seed
data and simulate changes made outside calsync. Every change to a calendar's events sends one
`exists` message to each live channel watching it.
"""

from __future__ import annotations

import copy
import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from .channels import Channel, ChannelRegistry, ChannelRequest, expiration_ms
from .clock import Clock
from .cursors import Cursors, PageCursor
from .datetimes import rfc3339
from .directory import ROLES, Calendar, Directory, require_writer, role_at_least
from .errors import (
    bad_request,
    full_sync_required,
    insufficient_scopes,
    not_found,
    unauthorized,
)
from .faults import Faults, Target
from .grants import CALENDAR_SCOPE, Caller, Grants, OAuthClient
from .listing import full_listing, incremental_listing, instances_listing, restrict_for_role
from .push import Delivery, PushDispatcher, PushSettings, build_message
from .query import EventsQuery, Params, parse_calendar_list_query, parse_events_query
from .schema import validate
from .store import Expansion

_WRITE_SCOPES = frozenset({CALENDAR_SCOPE, CALENDAR_SCOPE + ".events"})
_LIST_KEY = "calendarList:"


@dataclass
class GoogleOptions:
    """Knobs tests may change at any time (they are read on use)."""

    access_token_ttl: float = 3600.0
    auth_code_ttl: float = 600.0
    sync_token_ttl: float | None = None  # None: sync tokens expire only when told to
    default_channel_ttl: float = 604800.0  # documented default ttl (7 days)
    max_channel_ttl: float | None = None  # Google documents no maximum
    message_number_gaps: bool = True  # message numbers increase, "not sequential"
    require_auth: bool = True  # False: requests without a token act as the first account
    expansion: Expansion = field(default_factory=Expansion)
    push: PushSettings = field(default_factory=PushSettings)
    seed: int | None = None


class GoogleState:
    def __init__(self, options: GoogleOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or GoogleOptions()
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.faults = Faults()
        self.push = PushDispatcher(self._channel_live, lambda: self.options.push)
        self._rng = random.Random(self.options.seed)
        self._etag_base = self._rng.randrange(10**15, 9 * 10**15)
        self._reset_data()

    def _reset_data(self) -> None:
        self._etag_count = 0
        self.directory = Directory(self._next_etag, lambda: self.options.expansion)
        self.grants = Grants()
        self.cursors = Cursors()
        self.channels = ChannelRegistry()
        self.consent_user: str | None = None  # None: the first account
        self.consent_decision = "approve"

    # -- seeding -----------------------------------------------------------------------------

    def add_account(self, email: str, *, name: str = "", time_zone: str = "UTC") -> str:
        """Create a user with a primary calendar (id = email); returns the calendar id."""
        with self.lock:
            return self.directory.add_account(email, name or email, time_zone).primary_calendar_id

    def add_calendar(
        self,
        owner: str,
        *,
        calendar_id: str | None = None,
        summary: str = "",
        time_zone: str = "UTC",
        description: str = "",
    ) -> str:
        with self.lock:
            calendar = self.directory.add_calendar(
                owner, calendar_id, summary or "Calendar", time_zone, description
            )
            return calendar.id

    def share_calendar(self, calendar_id: str, email: str, role: str) -> None:
        """Give `email` access: owner, writer, reader or freeBusyReader."""
        with self.lock:
            self.directory.share(calendar_id, email, role)

    def add_client(
        self, client_id: str, client_secret: str, redirect_uris: tuple[str, ...] = ()
    ) -> OAuthClient:
        client = OAuthClient(client_id, client_secret, tuple(redirect_uris))
        with self.lock:
            self.grants.clients[client_id] = client
        return client

    def issue_tokens(
        self, email: str, client_id: str, scope: str = CALENDAR_SCOPE
    ) -> dict[str, Any]:
        """Skip the consent screen: a token response with an access and a refresh token."""
        with self.lock:
            self.directory.account(email)
            client = self.grants.clients[client_id]
            grant = self.grants.start_grant(client_id, email, scope)
            return self.grants.token_response(
                grant, client, self.clock.now(), self.options.access_token_ttl, True
            )

    def revoke_access(self, email: str | None = None, client_id: str | None = None) -> int:
        """The user removes the app: refresh gives invalid_grant, API calls 401."""
        with self.lock:
            return self.grants.revoke_user(email, client_id)

    def expire_access_tokens(self, email: str | None = None) -> None:
        with self.lock:
            self.grants.expire_access_tokens(self.clock.now(), email)

    def expire_sync_tokens(self, calendar_id: str | None = None, token: str | None = None) -> int:
        """Invalidate sync tokens now; their next use answers 410 fullSyncRequired."""
        with self.lock:
            return self.cursors.expire_sync_tokens(calendar_id, token)

    def reset(self) -> None:
        """Forget all data, faults and the delivery log (options and clock stay)."""
        with self.lock:
            self._reset_data()
            self.faults.clear()
            self.push.clear_log()

    def close(self) -> None:
        self.push.close()

    # -- authentication and faults ---------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            with self.lock:
                email = next(iter(self.directory.accounts), None)
            if not self.options.require_auth and email is not None:
                return Caller(email, "", frozenset({CALENDAR_SCOPE}))
            raise unauthorized(missing=True)
        scheme, _, token = authorization.partition(" ")
        with self.lock:
            caller = self.grants.caller(token.strip(), self.clock.now())
        if scheme.lower() != "bearer" or caller is None:
            raise unauthorized(missing=False)
        if not any(s.startswith(CALENDAR_SCOPE) for s in caller.scopes):
            raise insufficient_scopes()
        return caller

    def check_faults(
        self, target: Target, method: str, path: str, user: str = "", *, metered: bool = True
    ) -> None:
        fault = self.faults.request_fault(target, method, path, user, self.clock.now(), metered)
        if fault is not None:
            raise fault.api_error()

    # -- calendars ---------------------------------------------------------------------------

    def calendar_list(self, caller: Caller, params: Params) -> dict[str, Any]:
        query = parse_calendar_list_query(params)
        minimum = query.min_access_role or "freeBusyReader"
        if minimum not in ROLES:
            raise bad_request("Invalid value for: minAccessRole", location="minAccessRole")
        paging, key = query.paging, _LIST_KEY + caller.email
        with self.lock:
            body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": self._next_etag()}
            if paging.page_token:
                cursor = self.cursors.page_cursor(paging.page_token, key)
                return body | self._page(key, cursor.items, cursor.offset, paging)
            if paging.sync_token:
                # Entries rarely change here; an incremental list simply lists them all again.
                self.cursors.resolve_sync_token(
                    paging.sync_token, key, self.clock.now(), self.options.sync_token_ttl
                )
            listed = self.directory.calendar_list(
                caller.email, show_hidden=query.show_hidden, show_deleted=query.show_deleted
            )
            entries = [e for e in listed if e.get("deleted")
                       or role_at_least(e["accessRole"], minimum)]  # fmt: skip
            return body | self._page(key, entries, 0, paging)

    def rename_calendar(self, calendar_id: str, summary: str) -> None:
        """The owner renames the calendar (`calendars.patch`)."""
        with self.lock:
            self.directory.rename(calendar_id, summary)

    def hide_calendar(self, email: str, calendar_id: str, hidden: bool = True) -> None:
        """`email` hides the calendar from their list in Google's UI (or shows it again)."""
        with self.lock:
            self.directory.hide(email, calendar_id, hidden)

    def unsubscribe_calendar(self, email: str, calendar_id: str) -> None:
        """`email` removes the calendar from their list (`calendarList.delete`)."""
        with self.lock:
            self.directory.unsubscribe(email, calendar_id)

    def delete_calendar(self, calendar_id: str) -> None:
        """The owner deletes a secondary calendar (`calendars.delete`)."""
        with self.lock:
            self.directory.delete_calendar(calendar_id)

    def calendar_list_entry(self, caller: Caller, calendar_id: str) -> dict[str, Any]:
        with self.lock:
            calendar, _ = self.directory.resolve(caller.email, calendar_id)
            account = self.directory.accounts[caller.email]
            return self.directory.list_entry(account, calendar.id)

    def calendar_resource(self, caller: Caller, calendar_id: str) -> dict[str, Any]:
        with self.lock:
            return self.directory.resolve(caller.email, calendar_id)[0].resource()

    # -- events ------------------------------------------------------------------------------

    def list_events(
        self, calendar_id: str, params: Params | EventsQuery, caller: Caller | None = None
    ) -> dict[str, Any]:
        query = params if isinstance(params, EventsQuery) else parse_events_query(params)
        with self.lock:
            calendar, role = self._calendar(calendar_id, caller)
            if query.page_token:
                cursor = self.cursors.page_cursor(query.page_token, calendar.id)
                return self._events_body(calendar, role) | self._page(
                    calendar.id, cursor.items, cursor.offset, query, cursor.seq
                )
            items = self._listing(calendar, query)
            items = restrict_for_role(items, role)
            return self._events_body(calendar, role) | self._page(calendar.id, items, 0, query)

    def instances(
        self,
        calendar_id: str,
        event_id: str,
        params: Params | EventsQuery,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        query = params if isinstance(params, EventsQuery) else parse_events_query(params)
        query = replace(query, single_events=True)
        with self.lock:
            calendar, role = self._calendar(calendar_id, caller)
            if query.page_token:
                cursor = self.cursors.page_cursor(query.page_token, calendar.id)
                items, offset = cursor.items, cursor.offset
            else:
                now = self.clock.now()
                items = instances_listing(calendar.store, event_id, query, now)
                items, offset = restrict_for_role(items, role), 0
            # Instances are not synced incrementally: no nextSyncToken on the last page.
            return self._events_body(calendar, role) | self._page(
                calendar.id, items, offset, query, sync=False
            )

    def stored_events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Everything stored for a calendar, in creation order: tombstones and instance
        exceptions included (what a test inspects, not what the API lists)."""
        with self.lock:
            store = self._calendar(calendar_id, None)[0].store
            ordered = sorted(store.events.values(), key=lambda s: s.order)
            return [copy.deepcopy(s.resource) for s in ordered]

    def get_event(
        self, calendar_id: str, event_id: str, caller: Caller | None = None
    ) -> dict[str, Any]:
        with self.lock:
            calendar, role = self._calendar(calendar_id, caller)
            return restrict_for_role([calendar.store.get(event_id)], role)[0]

    def insert_event(
        self, calendar_id: str, body: Any, caller: Caller | None = None
    ) -> dict[str, Any]:
        body = validate(body, "Event")
        with self.lock:
            calendar = self._writable_calendar(calendar_id, caller)
            actor = caller.email if caller else calendar.id
            resource = calendar.store.insert(body, actor, self.clock.now())
            self._notify(calendar.id)
            return resource

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Any,
        caller: Caller | None = None,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        body = validate(body, "Event")
        with self.lock:
            calendar = self._writable_calendar(calendar_id, caller)
            resource = calendar.store.update(event_id, body, self.clock.now(), if_match)
            self._notify(calendar.id)
            return resource

    def patch_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Any,
        caller: Caller | None = None,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        body = validate(body, "Event")
        with self.lock:
            calendar = self._writable_calendar(calendar_id, caller)
            resource = calendar.store.patch(event_id, body, self.clock.now(), if_match)
            self._notify(calendar.id)
            return resource

    def delete_event(
        self,
        calendar_id: str,
        event_id: str,
        caller: Caller | None = None,
        if_match: str | None = None,
    ) -> None:
        with self.lock:
            calendar = self._writable_calendar(calendar_id, caller)
            calendar.store.delete(event_id, self.clock.now(), if_match)
            self._notify(calendar.id)

    def damage_event(self, calendar_id: str, event_id: str, drop: list[str]) -> dict[str, Any]:
        """A fault: the API serves the event without the fields in `drop` (as a change: new
        etag, `updated`, a push) until it is damaged with `drop=[]`. Returns the served form."""
        with self.lock:
            calendar = self._calendar(calendar_id, None)[0]
            resource = calendar.store.damage(event_id, drop, self.clock.now())
            self._notify(calendar.id)
            return resource

    # -- push --------------------------------------------------------------------------------

    def watch(
        self,
        calendar_id: str,
        body: Any,
        caller: Caller | None = None,
        base_url: str = "https://www.googleapis.com",
    ) -> dict[str, Any]:
        """Open a channel (body as for `events.watch`); its sync message is sent at once."""
        request = ChannelRequest.parse(validate(body, "Channel"))
        with self.lock:
            calendar, _ = self._calendar(calendar_id, caller)
            now_ms = self.clock.now_ms()
            channel = self.channels.open(
                Channel(
                    id=request.id,
                    resource_id=calendar.resource_id,
                    resource_uri=f"{base_url}/calendar/v3/calendars/{quote(calendar.id)}/events",
                    calendar_id=calendar.id,
                    address=request.address,
                    token=request.token,
                    expiration_ms=expiration_ms(
                        request,
                        now_ms,
                        self.options.default_channel_ttl,
                        self.options.max_channel_ttl,
                    ),
                    client_id=caller.client_id if caller else "",
                )
            )
            self._send(channel, "sync")
            return channel.resource()

    def stop_channel(self, body: Any, caller: Caller | None = None) -> None:
        """Only the OAuth client that opened a channel may stop it (`caller=None`: anyone)."""
        body = validate(body, "Channel")
        channel_id, resource_id = str(body.get("id") or ""), str(body.get("resourceId") or "")
        with self.lock:
            self.channels.stop(channel_id, resource_id, caller.client_id if caller else None)

    def live_channels(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            now_ms = self.clock.now_ms()
            return [
                c.resource() | {"calendarId": c.calendar_id, "address": c.address}
                for c in self.channels.channels.values()
                if c.live(now_ms) and calendar_id in (None, c.calendar_id)
            ]

    def deliveries(self) -> list[Delivery]:
        return self.push.deliveries()

    def wait_for_push_idle(self, timeout: float = 10.0) -> bool:
        return self.push.wait_idle(timeout)

    # -- internals ---------------------------------------------------------------------------

    def _calendar(self, calendar_id: str, caller: Caller | None) -> tuple[Calendar, str]:
        if caller is not None:
            return self.directory.resolve(caller.email, calendar_id)
        calendar = self.directory.calendars.get(calendar_id)
        if calendar is None:
            raise not_found()
        return calendar, "owner"

    def _writable_calendar(self, calendar_id: str, caller: Caller | None) -> Calendar:
        calendar, role = self._calendar(calendar_id, caller)
        if caller is not None:
            if not caller.scopes & _WRITE_SCOPES:
                raise insufficient_scopes()
            require_writer(role)
        return calendar

    def _listing(self, calendar: Calendar, query: EventsQuery) -> list[dict[str, Any]]:
        now = self.clock.now()
        if not query.incremental:
            return full_listing(calendar.store, query, now)
        token = str(query.sync_token)
        if self.faults.take_sync_expiry():
            self.cursors.expire_sync_tokens(token=token)
            raise full_sync_required()
        cursor = self.cursors.resolve_sync_token(
            token, calendar.id, now, self.options.sync_token_ttl
        )
        return incremental_listing(calendar.store, query, cursor.seq, now)

    def _page(
        self,
        key: str,
        items: list[dict[str, Any]],
        offset: int,
        query: EventsQuery,
        seq: int | None = None,
        sync: bool = True,
    ) -> dict[str, Any]:
        """One page; `nextPageToken` while more remain, `nextSyncToken` only on the last page."""
        if seq is None:
            calendar = self.directory.calendars.get(key)
            seq = calendar.store.version if calendar else 0
        end = offset + query.max_results
        body: dict[str, Any] = {"items": items[offset:end]}
        if end < len(items):
            body["nextPageToken"] = self.cursors.issue_page_token(PageCursor(key, items, end, seq))
        elif sync:
            body["nextSyncToken"] = self.cursors.issue_sync_token(key, seq, self.clock.now())
        return body

    def _events_body(self, calendar: Calendar, role: str) -> dict[str, Any]:
        store = calendar.store
        body = {
            "kind": "calendar#events",
            "etag": f'"p{store.version:016d}"',
            "summary": calendar.summary,
            "updated": rfc3339(store.updated or self.clock.now()),
            "timeZone": calendar.time_zone,
            "accessRole": role,
            "defaultReminders": [],
        }
        if calendar.description:
            body["description"] = calendar.description
        return body

    def _notify(self, calendar_id: str) -> None:
        for channel in self.channels.live_for(calendar_id, self.clock.now_ms()):
            self._send(channel, "exists")

    def _send(self, channel: Channel, state: str) -> None:
        number = channel.next_message_number(self._rng, self.options.message_number_gaps)
        message = build_message(channel, number, state)
        # The handshake is never dropped; change messages may be, as in real life.
        if state == "exists" and self.faults.take_drop():
            self.push.record_dropped(message)
        else:
            self.push.send(message)

    def _channel_live(self, channel_id: str) -> bool:
        with self.lock:
            channel = self.channels.channels.get(channel_id)
            return channel is not None and channel.live(self.clock.now_ms())

    def _next_etag(self) -> str:
        self._etag_count += 1
        return f'"{self._etag_base + self._etag_count * 1000}"'
