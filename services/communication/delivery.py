"""The life of a message: queued → sent → delivered, failed, bounced or suppressed, each step kept."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from observability.tracing import trace_carrier
from services.communication.models import Contact, DeliveryStatus, Message, MessageTemplate
from services.communication.rendering import Rendered
from services.communication.telemetry import count_on_commit, mask_address
from services.kit.time import utcnow
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.communication")


@dataclass(frozen=True)
class MessageQueued:
    """A transaction queued a message for sending on a channel: the dispatcher wakes once it commits."""

    channel: str


def address_for(contact: Contact | None, channel: str) -> str | None:
    """Where a user is reached on a channel: an email address, a phone number, or (in-app) nowhere else."""
    if channel == "in_app":
        return None
    if contact is None:
        return None
    return contact.email if channel == "email" else contact.phone


def record_step(
    db: AsyncSession, message: Message, status: str, *, detail: str | None = None, at: datetime | None = None
) -> None:
    """Moves a message to a status (or notes a retry) and keeps the step in its history."""
    if status != "retrying":
        message.status = status
        count_on_commit(db, message.channel, status)
    db.add(DeliveryStatus(message_id=message.id, status=status, detail=detail, occurred_at=at or utcnow()))


async def queue(
    db: AsyncSession,
    *,
    user_id: uuid.UUID | None,
    channel: str,
    recipient: str | None,
    rendered: Rendered,
    template: MessageTemplate | None,
    source: str,
    dedup_key: str | None = None,
    blocked: str | None = None,
    failed: str | None = None,
) -> Message:
    """Stores a rendered message for the dispatcher; suppressed when the recipient opted out."""
    now = utcnow()
    message = Message(
        id=uuid.uuid4(),
        user_id=user_id,
        channel=channel,
        recipient=recipient,
        template=template.name if template else None,
        template_version=template.version if template else None,
        subject=rendered.subject,
        body=rendered.body,
        status="queued",
        attempts=0,
        next_attempt_at=now,
        dedup_key=dedup_key,
        source=source,
        trace_headers=trace_carrier() or None,
        created_at=now,
        updated_at=now,
    )
    # Added, not flushed: the commit's flush writes it with its steps and the batch's other messages.
    db.add(message)
    record_step(db, message, "queued", at=now)
    if failed is not None:
        message.error = failed[:500]
        record_step(db, message, "failed", detail=failed[:500], at=now)
    elif blocked is not None:
        record_step(db, message, "suppressed", detail=blocked, at=now)
    else:
        UnitOfWork.of(db).announce(MessageQueued(channel))
    log.info(
        "notification_queued",
        message_id=str(message.id),
        channel=channel,
        template=message.template,
        template_version=message.template_version,
        status=message.status,
        recipient=mask_address(recipient),
        source=source,
    )
    return message
