"""Milestones a student hears of on every screen: a finished course and a refund.

Unlike a receipt (email, or in-app when no address is known), these are sent by email *and*
in-app, so that the student sees them in the academy as well as in their inbox. Each runs in the
consumer's transaction, once per event id (the inbox); the messages' deduplication key is the
event id, so a replay never sends a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import address_for, queue
from services.communication.rendering import Rendered
from services.communication.service import notify_user
from services.communication.templates import templates_for
from services.contracts.events import EnrollmentCompleted, PaymentRefunded, parse
from services.kit.errors import InvalidInput
from services.kit.events import Event

log = structlog.get_logger("cerebrum.communication")


async def notify_everywhere(
    db: AsyncSession,
    event: Event,
    *,
    user_id: uuid.UUID,
    template: str,
    variables: Mapping[str, Any],
    once_per: str | None = None,
) -> None:
    """Sends an event's message by email (when an address is known) and in-app, once per event
    (or once per ``once_per``, whatever events announce it again)."""
    contact = await repository.get_contact(db=db, user_id=user_id)
    channels = ["email", "in_app"] if address_for(contact, "email") else ["in_app"]
    variables = {"name": (contact.name if contact and contact.name else "there"), **variables}
    source, key = f"event:{event.type}", once_per or f"event:{event.id}"
    try:
        await notify_user(
            db=db,
            user_id=user_id,
            template=template,
            variables=variables,
            channels=channels,
            source=source,
            dedup_key=key,
        )
    except InvalidInput as exc:
        # An edited template that needs a variable this event does not carry: keep failed messages
        # for operators to see instead of retrying an event that can never succeed.
        for version in await templates_for(db, name=template, channels=channels, explicit=False):
            await queue(
                db,
                user_id=user_id,
                channel=version.channel,
                recipient=address_for(contact, version.channel),
                rendered=Rendered(subject=None, body=""),
                template=version,
                source=source,
                dedup_key=f"{key}:{version.channel}",
                failed=exc.detail,
            )


async def on_enrollment_completed(event: Event, db: AsyncSession) -> None:
    """Congratulates the student on finishing every lesson of a course."""
    payload = parse(event.type, event.data)
    assert isinstance(payload, EnrollmentCompleted)
    variables = {"course_title": payload.course_title or "your course"}
    # A course reopened (a lesson unticked) and finished again is congratulated once.
    await notify_everywhere(
        db,
        event,
        user_id=payload.user_id,
        template="course_completion",
        variables=variables,
        once_per=f"completion:{payload.enrollment_id}",
    )
    log.info("course_completion_notified", enrollment_id=str(payload.enrollment_id))


async def on_payment_refunded(event: Event, db: AsyncSession) -> None:
    """Tells the student their money is on its way back, with the credit note's number."""
    payload = parse(event.type, event.data)
    assert isinstance(payload, PaymentRefunded)
    variables = {
        "amount_paise": payload.amount_paise,
        "currency": payload.currency,
        "description": payload.description,
        "credit_note_number": payload.credit_note_number,
    }
    await notify_everywhere(db, event, user_id=payload.user_id, template="refund_confirmation", variables=variables)
    log.info("refund_notified", order_id=str(payload.order_id))
