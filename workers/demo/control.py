"""The demo's hands, over HTTP on loopback: what each person sees (the Wix schedule and their
own calendar, side by side) and the changes a visitor of the status page asks them to make.

    GET  /state                              staff, each with Wix schedule and own calendar
    POST /sessions            {staff}        the owner books a session (next free hour)
    POST /sessions/{id}/move                 the owner moves it an hour later
    POST /sessions/{id}/cancel               the owner cancels it
    POST /busy                {system}       the staff member adds a busy event
    POST /busy/{system}/{id}/delete          the staff member deletes an event
    POST /conflicts           {staff}        owner and staff retitle one session at once
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workers.demo.own_calendars import Entry
from workers.demo.people import SYSTEMS, People, Staff

DAYS_SHOWN = 7


def create_control(people: People) -> Starlette:
    async def state(request: Request) -> JSONResponse:
        start, end = _window()
        staff = [{**asdict(each), "wix": _entries(people.schedule(each, start, end)),
                  "own": _entries(people.calendar(each.system, start, end))}
                 for each in people.staff]  # fmt: skip
        return JSONResponse({"instanceId": people.instance_id, "from": start.isoformat(),
                             "to": end.isoformat(), "staff": staff})  # fmt: skip

    async def book(request: Request) -> JSONResponse:
        staff = _staff(people, (await _body(request)).get("staff"))
        start = _next_free_hour(people, staff)
        return JSONResponse({"id": people.book(staff, "Booked from the status page", start)})

    async def move(request: Request) -> JSONResponse:
        start, end = _window()
        found = [e for s in people.staff for e in people.schedule(s, start, end)]
        event = next((e for e in found if e.id == request.path_params["id"]), None)
        if event is None:
            return JSONResponse({"error": "no such session"}, status_code=404)
        hours = (event.end - event.start).total_seconds() / 3600
        people.move(event.id, event.start + timedelta(hours=1), hours)
        return JSONResponse({"id": event.id})

    async def cancel(request: Request) -> JSONResponse:
        people.cancel(request.path_params["id"])
        return JSONResponse({"id": request.path_params["id"]})

    async def add_busy(request: Request) -> JSONResponse:
        system = _system((await _body(request)).get("system"))
        start = _tomorrow_at(15)
        return JSONResponse({"id": people.add_busy(system, f"Busy ({system})", start)})

    async def delete_busy(request: Request) -> JSONResponse:
        people.remove(_system(request.path_params["system"]), request.path_params["id"])
        return JSONResponse({"id": request.path_params["id"]})

    async def conflict(request: Request) -> JSONResponse:
        staff = _staff(people, (await _body(request)).get("staff"))
        return JSONResponse({"title": _edit_both_sides(people, staff)})

    return Starlette(routes=[
        Route("/state", state),
        Route("/sessions", book, methods=["POST"]),
        Route("/sessions/{id}/move", move, methods=["POST"]),
        Route("/sessions/{id}/cancel", cancel, methods=["POST"]),
        Route("/busy", add_busy, methods=["POST"]),
        Route("/busy/{system}/{id:path}/delete", delete_busy, methods=["POST"]),
        Route("/conflicts", conflict, methods=["POST"]),
    ], exception_handlers={ValueError: _refused})  # fmt: skip


def _window() -> tuple[datetime, datetime]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today + timedelta(days=DAYS_SHOWN + 1)


def _tomorrow_at(hour: int) -> datetime:
    return _window()[0] + timedelta(days=1, hours=hour)


def _next_free_hour(people: People, staff: Staff) -> datetime:
    """The first working hour from tomorrow 09:00 UTC with nothing on the Wix schedule."""
    start, end = _window()
    taken = people.schedule(staff, start, end)
    slot = _tomorrow_at(9)
    while any(e.start < slot + timedelta(hours=1) and slot < e.end for e in taken):
        slot += timedelta(hours=1) if slot.hour < 17 else timedelta(hours=16)
    return slot


def _edit_both_sides(people: People, staff: Staff) -> str:
    """The owner renames a synced session in Wix while the staff member renames its copy:
    calsync reads both edits in one run, and its conflict policy decides the title."""
    start, end = _window()
    own = {(e.title, e.start): e for e in people.calendar(staff.system, start, end)}
    for session in people.schedule(staff, start + timedelta(days=1), end):
        copy = own.get((session.title, session.start))
        if copy is not None and not session.block and "(" not in session.title:
            people.retitle(session.id, f"{session.title} (room 2)")
            people.retitle_own(staff.system, copy.id, f"{session.title} (call first)")
            return session.title
    raise ValueError(f"staff: {staff.name} has no synced session left to edit")


def _entries(entries: list[Entry]) -> list[dict[str, Any]]:
    return [{"id": e.id, "title": e.title, "start": e.start.isoformat(),
             "end": e.end.isoformat(), "block": e.block} for e in entries]  # fmt: skip


def _staff(people: People, name: Any) -> Staff:
    for each in people.staff:
        if each.name == name:
            return each
    raise ValueError(f"staff: no staff member named {name!r}")


def _system(system: Any) -> str:
    if system not in SYSTEMS:
        raise ValueError(f"system: one of {', '.join(SYSTEMS)}")
    return str(system)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("body: a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("body: a JSON object")
    return body


async def _refused(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=400)
