"""Who may see the status page and post its forms.

HTTP basic auth, like Flower, with `CALSYNC_STATUS_BASIC_AUTH` (else Flower's credential);
without either the page does not exist (404). Credentials are compared in constant time.

Forms defend against cross-site requests twice: a token derived from the credential (a page
of another site can neither read nor compute it) must come back in the form, and a browser's
`Origin` header, when sent, must be this page's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from api.errors import ApiError

REALM = 'Basic realm="calsync status", charset="UTF-8"'
TOKEN_FIELD = "csrf"


def _credential(request: Request) -> bytes:
    secret = request.app.state.settings.status_credentials()
    if secret is None:
        raise ApiError(404, "Not Found")
    return str(secret.get_secret_value()).encode("utf-8")


def operator(request: Request) -> bytes:
    """The configured credential, once the request has proved it knows it."""
    expected = _credential(request)
    if not hmac.compare_digest(_digest(_given(request)), _digest(expected)):
        raise ApiError(401, "the status page needs its user name and password",
                       headers={"WWW-Authenticate": REALM})  # fmt: skip
    return expected


Operator = Annotated[bytes, Depends(operator)]


def _given(request: Request) -> bytes:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _digest(value: bytes) -> bytes:
    """Equal-length values to compare, so the time taken says nothing about the length."""
    return hashlib.sha256(value).digest()


def form_token(credential: bytes) -> str:
    return hmac.new(credential, b"calsync status page forms", hashlib.sha256).hexdigest()


def check_form(request: Request, credential: bytes, fields: dict[str, str]) -> None:
    """403 unless the form carries the page's token and came from the page's own origin."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc not in _own_hosts(request):
        raise ApiError(403, "this form was posted from another site", field="Origin")
    if not hmac.compare_digest(fields.get(TOKEN_FIELD, "").encode(),
                               form_token(credential).encode()):  # fmt: skip
        raise ApiError(403, "the form's token is missing or stale: reload the page",
                       field=TOKEN_FIELD)  # fmt: skip


def _own_hosts(request: Request) -> set[str]:
    """The page's host as the browser asked for it, and as calsync is published (a proxy in
    front may pass on another Host)."""
    public = urlsplit(str(request.app.state.settings.public_base_url)).netloc
    return {request.headers.get("host", ""), public} - {""}
