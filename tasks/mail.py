"""The approval email of the v1 sync-request flow, sent over SMTP (settings `smtp_*`).

The link in it names the sync request, signed (`models.sync_request.approval_token`); nothing
secret travels through the broker, and a retried task sends the same link again.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from celery import Task, shared_task

from config import Settings
from models import SyncRequest, SyncRequestStatus
from models.sync_request import approval_token
from models.types import utcnow
from tasks.backoff import retry_delay
from tasks.context import worker_context
from tasks.enqueue import APPROVAL_EMAIL

log = logging.getLogger(__name__)
SUBJECT = "Approve syncing your Google Calendar with our booking calendar"


@shared_task(bind=True, name=APPROVAL_EMAIL, max_retries=10)
def send_approval(self: Task, request_id: str) -> dict[str, str]:
    context = worker_context()
    with context.sessions() as db:
        request = db.get(SyncRequest, request_id)
        if request is None or request.status is not SyncRequestStatus.PENDING:
            return {"skipped": "not pending"}
        message = approval_message(context.settings, request)
    try:
        deliver(context.settings, message)
    except (smtplib.SMTPException, OSError) as error:
        delay = retry_delay(self.request.retries, None, cap=context.settings.max_retry_delay)
        log.warning("approval email not sent: %s", type(error).__name__)
        raise self.retry(countdown=delay, exc=error) from None
    with context.sessions() as db, db.begin():
        sent = db.get(SyncRequest, request_id)
        if sent is not None:
            sent.email_sent_at = utcnow()
    return {"sent": request_id}


def approval_link(settings: Settings, request_id: str) -> str:
    base = str(settings.public_base_url).rstrip("/")
    return f"{base}/approve/{approval_token(settings, request_id)}"


def approval_message(settings: Settings, request: SyncRequest) -> EmailMessage:
    link = approval_link(settings, request.id)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = request.email
    message["Subject"] = SUBJECT
    message.set_content(
        "Hello,\n\n"
        "you were asked to sync your Google Calendar with a booking calendar: your bookings\n"
        "will appear in your calendar, and your own events will block booking times.\n\n"
        f"To approve, open this link and sign in with Google:\n\n{link}\n\n"
        f"The link works until {request.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect\n"
        "this email, ignore it: nothing happens without your approval.\n"
    )
    return message


def deliver(settings: Settings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
