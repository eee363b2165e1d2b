"""Enrolment events, kept as who may open a course's lesson files; each runs once per event id (the kit's inbox)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import EnrollmentCancelled, EnrollmentCompleted, EnrollmentConfirmed
from services.courses import repository
from services.kit.events import Event
from services.kit.events.contracts import Handler
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.courses.handlers")


Enrolment = EnrollmentConfirmed | EnrollmentCompleted | EnrollmentCancelled


async def _keep(enrolment: Enrolment, db: AsyncSession, status: str) -> None:
    await repository.record_enrolment(
        db=db,
        enrollment_id=enrolment.enrollment_id,
        user_id=enrolment.user_id,
        course_id=enrolment.course_id,
        status=status,
        at=utcnow(),
    )


async def on_enrollment_confirmed(event: Event, db: AsyncSession) -> None:
    """Opens the course's lesson files to the student."""
    await _keep(EnrollmentConfirmed.model_validate(event.data), db, "confirmed")


async def on_enrollment_completed(event: Event, db: AsyncSession) -> None:
    """Keeps the course's lesson files open to a student who finished it."""
    await _keep(EnrollmentCompleted.model_validate(event.data), db, "completed")


async def on_enrollment_cancelled(event: Event, db: AsyncSession) -> None:
    """Closes the course's lesson files to the student (for this enrolment)."""
    enrolment = EnrollmentCancelled.model_validate(event.data)
    await _keep(enrolment, db, "cancelled")
    log.info("enrolment_closed", enrollment_id=str(enrolment.enrollment_id), reason=enrolment.reason)


def enrolment_handlers() -> dict[str, Handler]:
    """The events the courses service consumes, and what handles each."""
    return {
        "enrollment.confirmed": on_enrollment_confirmed,
        "enrollment.completed": on_enrollment_completed,
        "enrollment.cancelled": on_enrollment_cancelled,
    }
