"""Events of the courses service, written to its outbox in the transaction of the change."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.courses.models import OUTBOX, Course
from services.kit import events

EventType = Literal["course.created", "course.updated", "course.published"]


def course_payload(course: Course, **extra: Any) -> dict[str, Any]:
    """The public facts of a course that other services may keep a copy of."""
    return {
        "course_id": str(course.id),
        "slug": course.slug,
        "title": course.title,
        "subject": course.subject,
        "grade": course.grade,
        "price_paise": course.price_paise,
        "currency": course.currency,
        "capacity": course.capacity,
        "is_active": course.is_active,
        "is_published": course.is_published,
        **extra,
    }


async def record_event(*, db: AsyncSession, type: EventType, payload: dict[str, Any]) -> None:
    """Adds an event to the outbox in the caller's transaction."""
    await events.record_event(db, OUTBOX, type_=type, source="courses", data=payload)
