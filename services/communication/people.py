"""What communication keeps of a person follows the users service: a changed profile, a deleted account.

The contact (email, phone, the name messages greet) is a copy of what users owns. ``user.updated``
replaces it; ``user.deleted`` forgets it and scrubs every message that named or reached the
person, so that nothing here can say who they were. Both run once per event id (the inbox).
"""

from __future__ import annotations

import re

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import record_step
from services.communication.schemas import PHONE
from services.contracts.events import UserDeleted, UserUpdated, parse
from services.kit.events import Event
from services.kit.events.contracts import Handler

log = structlog.get_logger("cerebrum.communication")

SCRUBBED_BODY = "(removed: the account was deleted)"


def _phone(raw: str | None) -> str | None:
    phone = (raw or "").replace(" ", "")
    return phone if re.fullmatch(PHONE, phone) else None


async def on_user_updated(event: Event, db: AsyncSession) -> None:
    """Replaces the contact with the profile as it is now (a cleared phone is cleared here too)."""
    payload = parse(event.type, event.data)
    assert isinstance(payload, UserUpdated)
    # Only a contact already known is changed: an update arriving after the account's deletion
    # must not bring the person back.
    found = await repository.replace_contact(
        db=db,
        user_id=payload.user_id,
        email=payload.email.strip().lower(),
        phone=_phone(payload.phone),
        name=payload.full_name,
    )
    log.info("contact_updated", user_id=str(payload.user_id), changed=payload.changed, known=found)


async def on_user_deleted(event: Event, db: AsyncSession) -> None:
    """Forgets the contact, suppresses what was queued, and scrubs the person's messages and opt-outs."""
    payload = parse(event.type, event.data)
    assert isinstance(payload, UserDeleted)
    contact = await repository.get_contact(db=db, user_id=payload.user_id)
    addresses = [a for a in (contact.email, contact.phone) if a] if contact else []
    for message in await repository.queued_messages_of(db=db, user_id=payload.user_id):
        record_step(db, message, "suppressed", detail="the user was deleted")
    await db.flush()
    scrubbed = await repository.scrub_messages(
        db=db, user_id=payload.user_id, addresses=addresses, body=SCRUBBED_BODY
    )
    await repository.forget_opt_outs(db=db, user_id=payload.user_id, addresses=addresses)
    await repository.delete_contact(db=db, user_id=payload.user_id)
    log.info("contact_forgotten", user_id=str(payload.user_id), messages_scrubbed=scrubbed)


HANDLERS: dict[str, Handler] = {"user.updated": on_user_updated, "user.deleted": on_user_deleted}
