"""The batch endpoint: many Calendar API calls in one `multipart/mixed` request.

Each part (`Content-Type: application/http`) holds one inner HTTP request, which the sandbox
app itself serves, so a call in a batch meets the same authentication, faults, quota and
handlers as the call alone. The outer request's headers, except its `Content-` ones, apply to
every call that does not set them itself. The answer holds one part per call, in order, named
`Content-ID: response-<the call's Content-ID>`, with the inner HTTP response.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message as AsgiMessage
from starlette.types import Scope

from .api import api_endpoint
from .errors import bad_request
from .events import PREFIX
from .grants import Caller
from .state import GoogleState

BATCH_PATH = "/batch/calendar/v3"
MAX_CALLS = 1000  # Google's limit per batch request
Headers = list[tuple[bytes, bytes]]
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")  # HTTP ends lines in CRLF; the Python client in LF
# Scope entries an inner request shares with the batch that carries it.
_CONNECTION_KEYS = ("asgi", "http_version", "scheme", "server", "client", "root_path")


@dataclass(frozen=True)
class Call:
    """One inner request of a batch."""

    content_id: str | None
    method: str
    target: str  # path and query, as on the request line
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class Answer:
    """One inner response."""

    status: int
    headers: Headers
    body: bytes


async def batch(request: Request, state: GoogleState, caller: Caller) -> Response:
    calls = parse_calls(request.headers.get("content-type", ""), await request.body())
    if len(calls) > MAX_CALLS:
        raise bad_request(f"A batch request may hold at most {MAX_CALLS} calls.")
    shared = [h for h in request.headers.raw if not h[0].lower().startswith(b"content-")]
    answers = [await _serve(request, call, shared) for call in calls]
    return _multipart(calls, answers)


def parse_calls(content_type: str, body: bytes) -> list[Call]:
    """The calls of a `multipart/mixed` body; 400 for anything else."""
    envelope = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = BytesParser(EmailMessage, policy=policy.HTTP).parsebytes(envelope)
    parts = list(message.iter_parts()) if message.get_content_type() == "multipart/mixed" else []
    if not parts:
        raise bad_request("A batch request is a multipart/mixed body of calls.")
    return [_call(part) for part in parts]


def _call(part: Message) -> Call:
    if part.get_content_type() != "application/http":
        raise bad_request("Each part of a batch request is Content-Type: application/http.")
    payload = part.get_payload(decode=True)
    head, *rest = _BLANK_LINE.split(payload if isinstance(payload, bytes) else b"", maxsplit=1)
    lines = head.splitlines()
    words = lines[0].decode("latin-1").split() if lines else []
    if len(words) < 2:
        raise bad_request("Each part of a batch request holds an HTTP request.")
    headers = [_header(line) for line in lines[1:] if b":" in line]
    content_id = None if part["content-id"] is None else str(part["content-id"])
    body = rest[0] if rest else b""
    return Call(content_id, words[0].upper(), words[1], headers, body)


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.strip().lower(), value.strip()


async def _serve(request: Request, call: Call, shared: Headers) -> Answer:
    """The call, answered by the sandbox app as if it came alone."""
    url = urlsplit(call.target)
    if url.scheme or url.netloc or not url.path.startswith(PREFIX + "/"):
        refusal = bad_request("A call in a batch names a path of the Calendar API.").response()
        return Answer(refusal.status_code, refusal.raw_headers, bytes(refusal.body))
    own = {name for name, _ in call.headers}
    headers = [h for h in shared if h[0] not in own] + [
        h for h in call.headers if h[0] != b"content-length"
    ]
    scope: Scope = {
        **{key: request.scope[key] for key in _CONNECTION_KEYS if key in request.scope},
        "type": "http",
        "method": call.method,
        "path": unquote(url.path),
        "raw_path": url.path.encode(),
        "query_string": url.query.encode(),
        "headers": [*headers, (b"content-length", str(len(call.body)).encode())],
    }
    return await _dispatch(request, scope, call.body)


async def _dispatch(request: Request, scope: Scope, body: bytes) -> Answer:
    sent: list[AsgiMessage] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> AsgiMessage:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: AsgiMessage) -> None:
        sent.append(message)

    await request.app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], list(start.get("headers", [])), content)


def _multipart(calls: list[Call], answers: list[Answer]) -> Response:
    boundary = "batch_" + secrets.token_hex(16)
    parts = [_part(call.content_id, answer) for call, answer in zip(calls, answers, strict=True)]
    body = b"".join(f"--{boundary}\r\n".encode() + part for part in parts)
    body += f"--{boundary}--\r\n".encode()
    return Response(body, media_type=f"multipart/mixed; boundary={boundary}")


def _part(content_id: str | None, answer: Answer) -> bytes:
    head = ["Content-Type: application/http"]
    if content_id:
        head.append(f"Content-ID: {_response_id(content_id)}")
    status = f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}"
    # Always a Content-Length, so that even a 204 carries a header block.
    headers = [(n, v) for n, v in answer.headers if n.lower() != b"content-length"]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    lines = [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in headers]
    text = "\r\n".join([*head, "", status, *lines, "", ""])
    return text.encode("latin-1") + answer.body + b"\r\n"


def _response_id(content_id: str) -> str:
    """`<item1>` is answered as `<response-item1>`, `item1` as `response-item1`."""
    if content_id.startswith("<") and content_id.endswith(">"):
        return f"<response-{content_id[1:-1]}>"
    return f"response-{content_id}"


routes = [Route(BATCH_PATH, api_endpoint(batch, metered=False), methods=["POST"])]
