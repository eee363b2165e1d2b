"""Gives courses its copy of the enrolments confirmed before it consumed enrolment events (one-off, repeatable).

Courses learns who may open a course's lesson files from ``enrollment.confirmed``, ``.completed``
and ``.cancelled``. Enrolments confirmed before it listened (or moved by the data migration, which
publishes nothing) are copied once from the enrollments database, under the same rules the
events follow: a cancelled enrolment stays cancelled, a completed one stays open.
"""

from __future__ import annotations

from rich.console import Console
from sqlalchemy import select

from cerebrum.registry import settings_for
from services.courses import repository as courses_repository
from services.enrollments.models import Enrollment
from services.kit.app import ServiceKit
from services.kit.db import Database
from services.kit.time import utcnow

_COPIED = ("confirmed", "cancelled")
"""A pending enrolment opens nothing yet; its confirmation will be an event."""


async def copy_course_enrolments(*, enrollments: Database, courses: Database, batch: int = 1000) -> int:
    """Copies every confirmed, completed or cancelled enrolment into courses' copy; returns how many."""
    query = (
        select(Enrollment.id, Enrollment.user_id, Enrollment.course_id, Enrollment.status, Enrollment.completed_at)
        .where(Enrollment.status.in_(_COPIED))
        .order_by(Enrollment.id)
    )
    copied = 0
    async with enrollments.session_scope() as source:
        result = await source.stream(query.execution_options(yield_per=batch))
        async for rows in result.partitions(batch):
            async with courses.session_scope() as target:
                for row in rows:
                    status = "completed" if row.status == "confirmed" and row.completed_at else row.status
                    await courses_repository.record_enrolment(
                        db=target,
                        enrollment_id=row.id,
                        user_id=row.user_id,
                        course_id=row.course_id,
                        status=status,
                        at=utcnow(),
                    )
            copied += len(rows)
    return copied


async def backfill_course_enrolments(*, console: Console) -> int:
    """Runs the copy between the databases this environment configures."""
    enrollments, courses = ServiceKit.build(settings_for("enrollments")), ServiceKit.build(settings_for("courses"))
    try:
        copied = await copy_course_enrolments(enrollments=enrollments.db, courses=courses.db)
    finally:
        await enrollments.close()
        await courses.close()
    console.print(f"[green]copied[/] {copied} enrolments into courses' copy (who may open lesson files)")
    return copied
