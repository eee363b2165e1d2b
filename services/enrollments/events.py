"""Events of the enrollments service, written to its outbox in the transaction of the change."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import Payload
from services.enrollments.models import OUTBOX
from services.kit import events

EventType = Literal[
    "enrollment.created",
    "enrollment.confirmed",
    "enrollment.cancelled",
    "enrollment.progress_updated",
    "enrollment.completed",
]


async def record_event(*, db: AsyncSession, type: EventType, payload: Payload) -> None:
    """Adds an event to the outbox in the caller's transaction."""
    await events.record_event(db, OUTBOX, type_=type, source="enrollments", data=payload.data())
