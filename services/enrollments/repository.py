"""Every query of the enrollments service.

Those a progress update and a saga's steps run are built once, with bound parameters
(services/kit/statements.py says why).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollments.models import (
    ACTIVE_STATUSES,
    CourseCompletion,
    Enrollment,
    EnrollmentProgress,
    EnrollmentSagaRecord,
    SagaStep,
)
from services.kit.statements import cacheable, dialect_insert, insert_unless_present, select_by
from services.kit.time import utcnow


async def add(*, db: AsyncSession, row: object) -> None:
    """Adds a row and writes it now, so that a broken constraint shows here."""
    db.add(row)
    await db.flush()


async def active_enrollment(*, db: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID) -> Enrollment | None:
    """Gets a student's pending or confirmed enrolment in a course."""
    rows = await db.execute(_active_enrollment(), {"user_id": user_id, "course_id": course_id})
    return rows.scalars().first()


@functools.cache
def _active_enrollment() -> Any:
    return select(Enrollment).where(
        Enrollment.user_id == bindparam("user_id"),
        Enrollment.course_id == bindparam("course_id"),
        Enrollment.status.in_(ACTIVE_STATUSES),
    )


async def get_enrollment(*, db: AsyncSession, enrollment_id: uuid.UUID, lock: bool = False) -> Enrollment | None:
    """Gets an enrolment by id, locking its row when asked."""
    return (await db.execute(select_by(Enrollment, "id", lock=lock), {"key": enrollment_id})).scalars().first()


async def set_order(*, db: AsyncSession, enrollment_id: uuid.UUID, order_id: uuid.UUID) -> None:
    """Keeps the payment order's id on an enrolment, in one UPDATE (nothing loaded)."""
    statement = update(Enrollment).where(Enrollment.id == enrollment_id).values(order_id=order_id)
    await db.execute(statement.execution_options(synchronize_session=False))


async def list_enrollments(*, db: AsyncSession, user_id: uuid.UUID) -> Sequence[Enrollment]:
    """Lists a student's enrolments, newest first."""
    rows = await db.execute(
        select(Enrollment).where(Enrollment.user_id == user_id).order_by(Enrollment.created_at.desc(), Enrollment.id)
    )
    return rows.scalars().all()


async def get_saga(*, db: AsyncSession, saga_id: uuid.UUID, lock: bool = False) -> EnrollmentSagaRecord | None:
    """Gets a saga by id, locking its row when asked (every state change does)."""
    return (await db.execute(select_by(EnrollmentSagaRecord, "id", lock=lock), {"key": saga_id})).scalars().first()


async def saga_of_enrollment(
    *, db: AsyncSession, enrollment_id: uuid.UUID, lock: bool = False
) -> EnrollmentSagaRecord | None:
    """Gets the saga that created an enrolment."""
    query = select(EnrollmentSagaRecord).where(EnrollmentSagaRecord.enrollment_id == enrollment_id)
    if lock:
        query = query.with_for_update()
    return (await db.execute(query)).scalars().first()


async def saga_of_payment(
    *, db: AsyncSession, enrollment_id: uuid.UUID | None, order_id: uuid.UUID
) -> EnrollmentSagaRecord | None:
    """Locks the saga a payment event is about, by its enrolment or its order."""
    params: dict[str, uuid.UUID] = {"order_id": order_id}
    if enrollment_id is not None:
        params["enrollment_id"] = enrollment_id
    return (await db.execute(_saga_of_payment(enrollment_id is not None), params)).scalars().first()


@functools.cache
def _saga_of_payment(by_enrollment: bool) -> Any:
    match = EnrollmentSagaRecord.order_id == bindparam("order_id")
    if by_enrollment:
        match = or_(EnrollmentSagaRecord.enrollment_id == bindparam("enrollment_id"), match)
    return select(EnrollmentSagaRecord).where(match).with_for_update()


async def saga_states(
    *, db: AsyncSession, enrollment_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, EnrollmentSagaRecord]:
    """Gets the sagas of several enrolments, by enrolment id."""
    if not enrollment_ids:
        return {}
    rows = await db.execute(select(EnrollmentSagaRecord).where(EnrollmentSagaRecord.enrollment_id.in_(enrollment_ids)))
    return {saga.enrollment_id: saga for saga in rows.scalars()}


async def add_step(*, db: AsyncSession, saga_id: uuid.UUID, step: str, outcome: str, detail: str | None) -> None:
    """Appends one entry to a saga's step log."""
    db.add(SagaStep(saga_id=saga_id, step=step, outcome=outcome, detail=detail[:500] if detail else None, at=utcnow()))


async def saga_steps(*, db: AsyncSession, saga_id: uuid.UUID) -> Sequence[SagaStep]:
    """Lists a saga's step log in the order it ran."""
    rows = await db.execute(select(SagaStep).where(SagaStep.saga_id == saga_id).order_by(SagaStep.id))
    return rows.scalars().all()


async def claim_stuck_sagas(
    *, db: AsyncSession, states: Collection[str], older_than: datetime, limit: int, skip: Collection[uuid.UUID]
) -> list[uuid.UUID]:
    """Claims running sagas untouched since a moment: marks them touched now and counts the attempt.

    Another replica's scan skips the rows locked here, and after the commit sees them fresh.
    """
    query = (
        select(EnrollmentSagaRecord.id)
        .where(EnrollmentSagaRecord.state.in_(states), EnrollmentSagaRecord.updated_at < older_than)
        .order_by(EnrollmentSagaRecord.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip:
        query = query.where(EnrollmentSagaRecord.id.not_in(skip))
    ids = list((await db.execute(query)).scalars())
    if ids:
        await db.execute(
            update(EnrollmentSagaRecord)
            .where(EnrollmentSagaRecord.id.in_(ids))
            .values(updated_at=utcnow(), attempts=EnrollmentSagaRecord.attempts + 1)
        )
    return ids


@dataclass(frozen=True)
class LessonProgress:
    """What an enrolment records of one lesson."""

    completed: bool
    time_spent_seconds: int
    completed_at: datetime | None


async def get_progress(*, db: AsyncSession, enrollment_id: uuid.UUID, lesson_id: uuid.UUID) -> LessonProgress | None:
    """Gets a student's progress through one lesson (read as values: save_progress writes it)."""
    params = {"enrollment_id": enrollment_id, "lesson_id": lesson_id}
    row = (await db.execute(_progress_by_key(), params)).one_or_none()
    return None if row is None else LessonProgress(bool(row[0]), int(row[1]), row[2])


@functools.cache
def _progress_by_key() -> Any:
    table = cast(Table, EnrollmentProgress.__table__)
    return select(table.c.completed, table.c.time_spent_seconds, table.c.completed_at).where(
        table.c.enrollment_id == bindparam("enrollment_id"), table.c.lesson_id == bindparam("lesson_id")
    )


async def save_progress(
    *, db: AsyncSession, enrollment_id: uuid.UUID, lesson_id: uuid.UUID, progress: LessonProgress, at: datetime
) -> None:
    """Writes one lesson's progress, inserted or replaced, in one statement.

    Called with the enrolment's row locked: no other update of this lesson can come between the
    read and this write.
    """
    values = {
        "enrollment_id": enrollment_id,
        "lesson_id": lesson_id,
        "completed": progress.completed,
        "time_spent_seconds": progress.time_spent_seconds,
        "completed_at": progress.completed_at,
        "updated_at": at,
    }
    await db.execute(_progress_upsert(db.get_bind().dialect.name), values)


@functools.cache
def _progress_upsert(dialect: str) -> Any:
    table = cast(Table, EnrollmentProgress.__table__)
    statement = dialect_insert(dialect, table)
    replaced = ("completed", "time_spent_seconds", "completed_at", "updated_at")
    return cacheable(
        statement.on_conflict_do_update(
            index_elements=[table.c.enrollment_id, table.c.lesson_id],
            set_={name: statement.excluded[name] for name in replaced},
        )
    )


async def lesson_totals(*, db: AsyncSession, enrollment_id: uuid.UUID, lesson_ids: Collection[str]) -> tuple[int, int]:
    """Counts the completed lessons among the course's, and the time spent on them all."""
    params = {"enrollment_id": enrollment_id, "lesson_ids": [uuid.UUID(i) for i in lesson_ids]}
    completed, seconds = (await db.execute(_lesson_totals(), params)).one()
    return int(completed), int(seconds)


@functools.cache
def _lesson_totals() -> Any:
    return select(
        func.count().filter(EnrollmentProgress.completed.is_(True)),
        func.coalesce(func.sum(EnrollmentProgress.time_spent_seconds), 0),
    ).where(
        EnrollmentProgress.enrollment_id == bindparam("enrollment_id"),
        EnrollmentProgress.lesson_id.in_(bindparam("lesson_ids", expanding=True)),
    )


async def completed_lessons(*, db: AsyncSession, enrollment_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """Gets the completed lesson ids of several enrolments."""
    if not enrollment_ids:
        return {}
    rows = await db.execute(
        select(EnrollmentProgress.enrollment_id, EnrollmentProgress.lesson_id).where(
            EnrollmentProgress.enrollment_id.in_(enrollment_ids), EnrollmentProgress.completed.is_(True)
        )
    )
    done: dict[uuid.UUID, set[str]] = {}
    for enrollment_id, lesson_id in rows:
        done.setdefault(enrollment_id, set()).add(str(lesson_id))
    return done


async def add_completion_once(
    *,
    db: AsyncSession,
    enrollment_id: uuid.UUID,
    user_id: uuid.UUID,
    course_id: uuid.UUID,
    total_time_seconds: int,
    at: datetime,
) -> bool:
    """Records a course completion unless one exists; True when this call recorded it."""
    table = CourseCompletion.__table__
    statement = insert_unless_present(db.bind.dialect.name, table, returning="id", on=("enrollment_id",))
    row = {
        "id": uuid.uuid4(),
        "enrollment_id": enrollment_id,
        "user_id": user_id,
        "course_id": course_id,
        "total_time_seconds": total_time_seconds,
        "completed_at": at,
    }
    return (await db.execute(statement, row)).first() is not None


async def remove_completion(*, db: AsyncSession, enrollment_id: uuid.UUID) -> None:
    """Forgets an enrolment's course completion, so that completing it again records it again."""
    await db.execute(delete(CourseCompletion).where(CourseCompletion.enrollment_id == enrollment_id))


async def sagas_of_user(
    *, db: AsyncSession, user_id: uuid.UUID, states: Collection[str]
) -> Sequence[EnrollmentSagaRecord]:
    """Locks a student's sagas that are in one of the states."""
    query = (
        select(EnrollmentSagaRecord)
        .where(EnrollmentSagaRecord.user_id == user_id, EnrollmentSagaRecord.state.in_(list(states)))
        .order_by(EnrollmentSagaRecord.created_at)
        .with_for_update()
    )
    return (await db.execute(query)).scalars().all()
