"""Events other services publish that the communication service answers with a message.

Each runs in the consumer's transaction, once per event id (the inbox); the message's
deduplication key is the event id as well, so a replay can never make a second one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import people, repository
from services.communication.completion import on_enrollment_completed, on_payment_refunded
from services.communication.delivery import address_for, queue
from services.communication.rendering import Rendered
from services.communication.schemas import PHONE
from services.communication.service import notify_user
from services.communication.templates import templates_for
from services.contracts.events import (
    AssessmentCompleted,
    EnrollmentConfirmed,
    PaymentSucceeded,
    UserRegistered,
    parse,
)
from services.kit.errors import InvalidInput
from services.kit.events import Event
from services.kit.events.contracts import Handler

log = structlog.get_logger("cerebrum.communication")


async def _notify(
    db: AsyncSession, event: Event, *, user_id: uuid.UUID, template: str, variables: Mapping[str, Any]
) -> None:
    """Sends an event's message by email, or in-app when no email address is known."""
    contact = await repository.get_contact(db=db, user_id=user_id)
    channel = "email" if address_for(contact, "email") else "in_app"
    variables = {"name": (contact.name if contact and contact.name else "there"), **variables}
    source, key = f"event:{event.type}", f"event:{event.id}"
    try:
        await notify_user(
            db=db,
            user_id=user_id,
            template=template,
            variables=variables,
            channels=[channel],
            source=source,
            dedup_key=key,
            first_for_key=True,  # the inbox claimed the event in this transaction: nothing was queued for it
        )
    except InvalidInput as exc:
        # An edited template that needs a variable this event does not carry: keep a failed message
        # for operators to see instead of retrying an event that can never succeed.
        (version,) = await templates_for(db, name=template, channels=[channel], explicit=True)
        await queue(
            db,
            user_id=user_id,
            channel=channel,
            recipient=address_for(contact, channel),
            rendered=Rendered(subject=None, body=""),
            template=version,
            source=source,
            dedup_key=f"{key}:{channel}",
            failed=exc.detail,
        )


async def on_user_registered(event: Event, db: AsyncSession) -> None:
    """Learns the new user's contact details and welcomes them."""
    payload = parse(event.type, event.data)
    assert isinstance(payload, UserRegistered)
    phone = str((payload.model_extra or {}).get("phone") or "").replace(" ", "")
    await repository.save_contact(
        db=db,
        user_id=payload.user_id,
        email=payload.email.strip().lower(),
        phone=phone if re.fullmatch(PHONE, phone) else None,
        name=payload.full_name,
    )
    await _notify(db, event, user_id=payload.user_id, template="welcome", variables={})


async def on_enrollment_confirmed(event: Event, db: AsyncSession) -> None:
    payload = parse(event.type, event.data)
    assert isinstance(payload, EnrollmentConfirmed)
    variables = {"course_title": payload.course_title, "amount_paise": payload.amount_paise}
    await _notify(db, event, user_id=payload.user_id, template="enrolment_confirmation", variables=variables)


async def on_payment_succeeded(event: Event, db: AsyncSession) -> None:
    payload = parse(event.type, event.data)
    assert isinstance(payload, PaymentSucceeded)
    variables = {
        "amount_paise": payload.amount_paise,
        "currency": payload.currency,
        "payment_id": str(payload.payment_id),
    }
    await _notify(db, event, user_id=payload.user_id, template="payment_receipt", variables=variables)


async def on_assessment_completed(event: Event, db: AsyncSession) -> None:
    payload = parse(event.type, event.data)
    assert isinstance(payload, AssessmentCompleted)
    variables = {
        "topic": payload.topic,
        "score": round(payload.score, 2),
        "max_score": round(payload.max_score, 2),
        "percentage": round(payload.percentage, 1),
    }
    await _notify(db, event, user_id=payload.user_id, template="assessment_result", variables=variables)


async def read_ahead(events: Sequence[Event], db: AsyncSession) -> None:
    """Reads the contacts and preferences of everyone a batch's events are about, one query each,
    instead of two queries per message."""
    user_ids = set()
    for event in events:
        try:
            user_ids.add(uuid.UUID(str(event.data["user_id"])))
        except (KeyError, ValueError):
            continue  # the handler refuses it
    if len(user_ids) > 1:
        await repository.read_people(db=db, user_ids=user_ids)


HANDLERS: dict[str, Handler] = {
    "user.registered": on_user_registered,
    **people.HANDLERS,
    "enrollment.confirmed": on_enrollment_confirmed,
    "enrollment.completed": on_enrollment_completed,
    "payment.succeeded": on_payment_succeeded,
    "payment.refunded": on_payment_refunded,
    "assessment.completed": on_assessment_completed,
}
