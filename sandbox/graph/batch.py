"""`POST /v1.0/$batch`: Graph's JSON batching.

Each inner request is served by the app's own routes (middleware, faults and handlers alike)
with the batch's `Authorization`, so an item answers exactly what the request alone would.
Items run one after another in the order listed; `dependsOn` may name only requests listed
earlier, and an item whose dependency did not succeed answers 424 without running. The answer
lists the responses in a shuffled order: Graph promises none, clients correlate by `id`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from .context import authenticate, json_body
from .errors import GraphError, bad_request, error_body

if TYPE_CHECKING:
    from .state import GraphState

MAX_REQUESTS = 20
_WRITES = {"POST", "PATCH", "PUT"}
# Outer headers an inner request keeps: the caller's identity and the host its links name.
_CARRIED = {b"authorization", b"host"}


@dataclass(frozen=True)
class Item:
    """One inner request of a batch."""

    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    depends_on: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.id.casefold()  # ids are not case-sensitive


@dataclass
class Answer:
    """An inner response, as the app sends it."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def rendered(self, item_id: str) -> dict[str, Any]:
        headers = {k: v for k, v in self.headers.items() if k != "content-length"}
        rendered = {"id": item_id, "status": self.status, "headers": headers}
        if self.body:
            rendered["body"] = json.loads(self.body)
        return rendered


def routes(state: GraphState) -> list[Route]:
    order = random.Random(20)

    async def batch(request: Request) -> Response:
        authenticate(state, request)
        # The batch itself meets path faults; the request budget counts its inner requests.
        refused = state.faults.check(request.method, request.url.path, None)
        if refused is not None:
            raise refused
        items = parse_batch(await json_body(request))
        answers: dict[str, Answer] = {}
        for item in items:
            failed = any(not 200 <= answers[d].status < 300 for d in item.depends_on)
            answers[item.key] = failed_dependency() if failed else await serve(request, item)
        responses = [answers[item.key].rendered(item.id) for item in items]
        order.shuffle(responses)
        return JSONResponse({"responses": responses})

    return [Route("/v1.0/$batch", batch, methods=["POST"])]


def parse_batch(payload: Any) -> list[Item]:
    """The batch's requests; a malformed batch is refused whole (400), before any runs."""
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list):
        raise _refused("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _refused("Number of requests inside batch exceeds the limit.")
    items: list[Item] = []
    for raw in requests:
        item = _item(raw)
        _check(item, {earlier.key for earlier in items})
        items.append(item)
    return items


def _item(raw: Any) -> Item:
    fields = raw if isinstance(raw, dict) else {}
    item_id, method, url = (fields.get(name) for name in ("id", "method", "url"))
    headers, depends_on = fields.get("headers") or {}, fields.get("dependsOn") or []
    texts = (item_id, method, url)
    if not all(isinstance(t, str) and t for t in texts) or not isinstance(headers, dict):
        raise _refused("Each request needs an id, a method, a url and headers as an object.")
    if not isinstance(depends_on, list):
        raise _refused(f"dependsOn of request {item_id} must be an array of request ids.")
    return Item(
        str(item_id), str(method).upper(), str(url),
        {str(k): str(v) for k, v in headers.items()}, fields.get("body"),
        tuple(str(d).casefold() for d in depends_on),
    )  # fmt: skip


def _check(item: Item, earlier: set[str]) -> None:
    if item.key in earlier:
        raise _refused(f"Request Id {item.id} has to be unique in a batch.")
    typed = any(name.lower() == "content-type" for name in item.headers)
    if item.method in _WRITES and (item.body is None or not typed):
        raise _refused(
            f"Write request id : {item.id} does not contain Content-Type header or body."
        )
    if any(d not in earlier for d in item.depends_on):
        raise _refused(f"Request {item.id} may depend only on requests listed before it.")


def _refused(message: str) -> GraphError:
    return bad_request(message, "BadRequest")


async def serve(request: Request, item: Item) -> Answer:
    """The item as a request of its own to the app."""
    path, _, query = item.url.partition("?")
    path = "/v1.0/" + path.lstrip("/")
    headers = [
        (name.lower().encode(), value.encode())
        for name, value in item.headers.items()
        if name.lower().encode() not in _CARRIED
    ]
    headers += [(name, value) for name, value in request.scope["headers"] if name in _CARRIED]
    outer = ("type", "asgi", "http_version", "scheme", "server", "client")
    scope = {key: request.scope[key] for key in outer if key in request.scope}
    scope.update({
        "root_path": "", "method": item.method, "path": unquote(path), "raw_path": path.encode(),
        "query_string": query.encode(), "headers": headers,
    })  # fmt: skip
    body = b"" if item.body is None else json.dumps(item.body).encode()
    unread = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:  # the body, then nothing more to read
        return unread.pop() if unread else {"type": "http.disconnect"}

    answer = Answer()
    await request.app(scope, receive, answer.send)
    return answer


def failed_dependency() -> Answer:
    body = error_body("FailedDependency", "A request this one depends on did not succeed.")
    return Answer(424, {"content-type": "application/json"}, bytearray(json.dumps(body).encode()))
