"""Telling a business that a connection broke (`tasks.breaks` decides when): an email to the
tenant's address over the SMTP settings of the approval emails, and a signed POST to the
tenant's webhook, each of them once.

Each is marked sent as soon as it went out, so the retry after the other failed (an SMTP
server down, a receiver answering 5xx) never repeats it; one the tenant has not set is
skipped. Retries back off as sync retries do. A worker dying between sending and marking
sends once more: the webhook body's `id` (the alert's) lets a receiver drop the repeat.

Signature: `Calsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>"
keyed with the tenant's webhook secret>`; see docs/api.md for checking it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
import time
from typing import Any

import httpx
from celery import Task, shared_task
from sqlalchemy.orm import InstrumentedAttribute

from models import BreakAlert
from models.types import utcnow
from providers.netguard import IPAddress, UnresolvedHost, UnsafeAddress, check_webhook_url
from tasks.backoff import retry_delay
from tasks.break_news import BreakNews, email_for, read_news, webhook_body
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import BREAK_ALERT
from tasks.mail import deliver

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Calsync-Signature"
WEBHOOK_TIMEOUT = 10.0


class WebhookRefused(Exception):
    """The receiver answered, but not with a 2xx."""


@shared_task(bind=True, name=BREAK_ALERT, max_retries=12)
def break_alert(self: Task, alert_id: str) -> dict[str, str]:
    context = worker_context()
    with context.sessions() as db:
        found = read_news(db, context.settings, alert_id)
    if found is None:
        return {"skipped": "no such alert"}
    news, to = found
    done: dict[str, str] = {}
    failure: Exception | None = None
    if to.email is not None:
        try:
            deliver(context.settings, email_for(context.settings, news, to.email))
            _mark(context, alert_id, BreakAlert.emailed_at)
            done["email"] = "sent"
        except (smtplib.SMTPException, OSError) as error:
            failure = error
    if to.webhook_url is not None and to.webhook_secret is not None:
        try:
            post(to.webhook_url, to.webhook_secret, news)
            _mark(context, alert_id, BreakAlert.webhook_sent_at)
            done["webhook"] = "sent"
        except UnsafeAddress:  # its host resolves elsewhere now: never POST there
            log.warning("break webhook refused by the address guard", extra={"alert_id": alert_id})
            done["webhook"] = "refused"
        except (httpx.HTTPError, WebhookRefused, UnresolvedHost) as error:
            failure = error
    if failure is not None:
        _retry(self, context, alert_id, failure)
    return done


def post(url: str, secret: str, news: BreakNews) -> None:
    # Again: what the host resolves to may have changed since it was set.
    addresses = check_webhook_url(url)
    body = json.dumps(webhook_body(news), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body)}
    # A client of its own: connections are pooled by address, and one opened for another host
    # (its certificate checked against that host's name) must never carry this request.
    with httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client:
        *others, last = addresses
        for address in others:
            with contextlib.suppress(httpx.ConnectError):
                return _post_to(client, url, address, body, headers)
        _post_to(client, url, last, body, headers)


def _post_to(client: httpx.Client, url: str, address: IPAddress, body: bytes,
             headers: dict[str, str]) -> None:  # fmt: skip
    """POST to `address`, one the check judged, never to what the host resolves to by now
    (rebinding): the URL names the address, the Host header and TLS (SNI and the certificate's
    name) the host."""
    given = httpx.URL(url)
    response = client.post(
        given.copy_with(host=str(address)), content=body,
        headers={**headers, "Host": given.netloc.decode("ascii")},
        extensions={"sni_hostname": given.raw_host.decode("ascii")},
    )  # fmt: skip
    if not response.is_success:
        raise WebhookRefused(f"the receiver answered {response.status_code}")


def signature(secret: str, body: bytes, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    signed = f"{stamp}.".encode() + body
    return f"t={stamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def _mark(context: WorkerContext, alert_id: str, column: InstrumentedAttribute[Any]) -> None:
    with context.sessions() as db, db.begin():
        alert = db.get(BreakAlert, alert_id)
        if alert is not None:
            setattr(alert, column.key, utcnow())


def _retry(task: Task, context: WorkerContext, alert_id: str, failure: Exception) -> None:
    delay = retry_delay(task.request.retries, None, cap=context.settings.max_retry_delay)
    log.warning("break alert not delivered, retrying", extra={
        "alert_id": alert_id, "error": type(failure).__name__, "delay": delay})  # fmt: skip
    raise task.retry(countdown=delay, exc=failure)
