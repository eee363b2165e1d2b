"""Every query of the courses service (the search index keeps its own, in ``search.py``)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.courses.models import ContentFile, Course, CourseEnrolment, CurriculumTopic, Lesson, SeatReservation
from services.courses.schemas import CourseFilters
from services.kit.statements import cacheable, dialect_insert, insert_unless_present, select_by

_COURSES = cast(Table, Course.__table__)


def _filters(filters: CourseFilters, *, published_only: bool) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if published_only:
        conditions.append(Course.is_published.is_(True))
    if filters.grade is not None:
        conditions.append(Course.grade == filters.grade)
    if filters.subject is not None:
        conditions.append(func.lower(Course.subject) == filters.subject.lower())
    if filters.min_price is not None:
        conditions.append(Course.price_paise >= filters.min_price)
    if filters.max_price is not None:
        conditions.append(Course.price_paise <= filters.max_price)
    if filters.active is not None:
        conditions.append(Course.is_active.is_(filters.active))
    return conditions


async def list_courses(
    *, db: AsyncSession, filters: CourseFilters, published_only: bool
) -> tuple[Sequence[Course], int]:
    """Lists one page of courses matching the filters, with the total count."""
    conditions = _filters(filters, published_only=published_only)
    total = (await db.execute(select(func.count()).select_from(Course).where(*conditions))).scalar_one()
    page = await db.execute(
        select(Course).where(*conditions).order_by(Course.title, Course.id).limit(filters.limit).offset(filters.offset)
    )
    return page.scalars().all(), int(total)


async def get_course(*, db: AsyncSession, course_id: uuid.UUID) -> Course | None:
    """Gets a course by id."""
    return (await db.execute(select_by(Course, "id"), {"key": course_id})).scalar_one_or_none()


async def get_courses(*, db: AsyncSession, course_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Course]:
    """Gets courses by id."""
    if not course_ids:
        return {}
    rows = await db.execute(select(Course).where(Course.id.in_(course_ids)))
    return {course.id: course for course in rows.scalars()}


async def slug_taken(*, db: AsyncSession, slug: str, other_than: uuid.UUID | None = None) -> bool:
    """Tells whether another course already uses a slug."""
    query = select(Course.id).where(Course.slug == slug)
    if other_than is not None:
        query = query.where(Course.id != other_than)
    return (await db.execute(query.limit(1))).first() is not None


async def count_courses(*, db: AsyncSession) -> int:
    """Counts every course."""
    return int((await db.execute(select(func.count()).select_from(Course))).scalar_one())


async def add(*, db: AsyncSession, rows: Sequence[Any]) -> None:
    """Adds new rows, flushing so that constraint violations surface here."""
    db.add_all(rows)
    await db.flush()


async def get_lessons(*, db: AsyncSession, course_id: uuid.UUID) -> Sequence[Lesson]:
    """Gets a course's lessons in teaching order."""
    return (await db.execute(_lessons_of(), {"course_id": course_id})).scalars().all()


@functools.cache
def _lessons_of() -> Any:
    return select(Lesson).where(Lesson.course_id == bindparam("course_id")).order_by(Lesson.position)


async def get_lesson(*, db: AsyncSession, course_id: uuid.UUID, lesson_id: uuid.UUID) -> Lesson | None:
    """Gets one lesson of a course."""
    rows = await db.execute(select(Lesson).where(Lesson.id == lesson_id, Lesson.course_id == course_id))
    return rows.scalar_one_or_none()


async def count_files_of_lessons(*, db: AsyncSession, lesson_ids: Sequence[uuid.UUID]) -> int:
    """Counts the content files attached to some lessons."""
    if not lesson_ids:
        return 0
    query = select(func.count()).select_from(ContentFile).where(ContentFile.lesson_id.in_(lesson_ids))
    return int((await db.execute(query)).scalar_one())


async def delete_lessons(*, db: AsyncSession, lesson_ids: Sequence[uuid.UUID]) -> None:
    """Deletes lessons."""
    if lesson_ids:
        await db.execute(delete(Lesson).where(Lesson.id.in_(lesson_ids)))


async def get_curriculum(*, db: AsyncSession, grade: str) -> Sequence[CurriculumTopic]:
    """Gets a grade's syllabus topics, unit by unit, in order."""
    rows = await db.execute(
        select(CurriculumTopic)
        .where(CurriculumTopic.grade == grade)
        .order_by(CurriculumTopic.unit_position, CurriculumTopic.topic_position)
    )
    return rows.scalars().all()


async def get_file(*, db: AsyncSession, lesson_id: uuid.UUID, file_id: uuid.UUID) -> ContentFile | None:
    """Gets one content file of a lesson."""
    rows = await db.execute(select(ContentFile).where(ContentFile.id == file_id, ContentFile.lesson_id == lesson_id))
    return rows.scalar_one_or_none()


async def take_seat(*, db: AsyncSession, course_id: uuid.UUID) -> int | None:
    """Takes one seat if the course is open and any is left, atomically; returns the seats left, or
    None when the course is full, closed or unknown."""
    left = (await db.execute(_take_seat(), {"course_id": course_id})).scalar_one_or_none()
    return None if left is None else int(left)


async def give_back_seat(*, db: AsyncSession, course_id: uuid.UUID) -> int:
    """Frees one seat; returns the seats left."""
    left = (await db.execute(_give_back_seat(), {"course_id": course_id})).scalar_one_or_none()
    return int(left) if left is not None else await seats_left(db=db, course_id=course_id)


async def seats_left(*, db: AsyncSession, course_id: uuid.UUID) -> int:
    """Reads the seats left on a course as the database has them now."""
    return int((await db.execute(_seats_left(), {"course_id": course_id})).scalar_one())


async def get_reservation(*, db: AsyncSession, reservation_id: uuid.UUID) -> SeatReservation | None:
    """Gets a seat reservation as the database has it now (not a stale copy)."""
    return (await db.execute(_reservation(), {"reservation_id": reservation_id})).scalar_one_or_none()


async def insert_reservation_once(
    *,
    db: AsyncSession,
    reservation_id: uuid.UUID,
    course_id: uuid.UUID,
    student_id: uuid.UUID | None,
    status: str,
    at: datetime,
) -> bool:
    """Records a reservation unless its id is already known (no error, no savepoint); tells if it was new."""
    statement = insert_unless_present(
        db.get_bind().dialect.name, SeatReservation.__table__, returning="reservation_id", on=("reservation_id",)
    )
    row = {
        "reservation_id": reservation_id,
        "course_id": course_id,
        "student_id": student_id,
        "status": status,
        "created_at": at,
        "released_at": at if status == "released" else None,
    }
    return (await db.execute(statement, row)).first() is not None


async def mark_released(*, db: AsyncSession, reservation_id: uuid.UUID, course_id: uuid.UUID, at: datetime) -> bool:
    """Releases a held reservation, once: False when it was not held."""
    params = {"reservation": reservation_id, "course": course_id, "released_at": at}
    return (await db.execute(_mark_released(), params)).first() is not None


# A seat's statements, built once with bound parameters (services/kit/statements.py says why).


@functools.cache
def _take_seat() -> Any:
    # On the table, not the mapped class: an ORM-enabled UPDATE is annotated afresh at each execution.
    courses = _COURSES
    return (
        update(courses)
        .where(
            courses.c.id == bindparam("course_id"),
            courses.c.is_active.is_(True),
            courses.c.seats_taken < courses.c.capacity,
        )
        .values(seats_taken=courses.c.seats_taken + 1)
        .returning(courses.c.capacity - courses.c.seats_taken)
    )


@functools.cache
def _give_back_seat() -> Any:
    courses = _COURSES
    return (
        update(courses)
        .where(courses.c.id == bindparam("course_id"), courses.c.seats_taken > 0)
        .values(seats_taken=courses.c.seats_taken - 1)
        .returning(courses.c.capacity - courses.c.seats_taken)
    )


@functools.cache
def _seats_left() -> Any:
    return select(Course.capacity - Course.seats_taken).where(Course.id == bindparam("course_id"))


@functools.cache
def _reservation() -> Any:
    query = select(SeatReservation).where(SeatReservation.reservation_id == bindparam("reservation_id"))
    return query.execution_options(populate_existing=True)


@functools.cache
def _mark_released() -> Any:
    return (
        update(SeatReservation)
        .where(
            # Not named after a column: an UPDATE keeps those names for the values it sets.
            SeatReservation.reservation_id == bindparam("reservation"),
            SeatReservation.course_id == bindparam("course"),
            SeatReservation.status == "held",
        )
        .values(status="released", released_at=bindparam("released_at"))
        .returning(SeatReservation.reservation_id)
        .execution_options(synchronize_session=False)
    )


async def count_curriculum_topics(*, db: AsyncSession) -> int:
    """Counts every curriculum topic of every grade."""
    return int((await db.execute(select(func.count()).select_from(CurriculumTopic))).scalar_one())


_KEEPS_OVER = {
    # A status the announced one does not replace: a cancelled enrolment is over for good (a late
    # confirmation must not reopen it), and a completed one is not set back by a late confirmation.
    "confirmed": ("cancelled", "completed"),
    "completed": ("cancelled",),
    "cancelled": (),
}


async def record_enrolment(
    *, db: AsyncSession, enrollment_id: uuid.UUID, user_id: uuid.UUID, course_id: uuid.UUID, status: str, at: datetime
) -> None:
    """Keeps an enrolment's announced status, whatever order its events arrive in."""
    row = {
        "enrollment_id": enrollment_id,
        "user_id": user_id,
        "course_id": course_id,
        "status": status,
        "updated_at": at,
    }
    await db.execute(_enrolment_upsert(db.get_bind().dialect.name, status), row)


@functools.cache
def _enrolment_upsert(dialect: str, status: str) -> Any:
    """The upsert that announces ``status``, built once per dialect and status."""
    table: Table = CourseEnrolment.__table__  # type: ignore[assignment]
    insert = dialect_insert(dialect, table)
    kept = _KEEPS_OVER[status]
    statement = insert.on_conflict_do_update(
        index_elements=["enrollment_id"],
        set_={"status": insert.excluded.status, "updated_at": insert.excluded.updated_at},
        where=table.c.status.not_in(kept) if kept else None,
    )
    return cacheable(statement)


async def is_enrolled(*, db: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID) -> bool:
    """Tells whether a student holds a confirmed (or completed) enrolment in a course."""
    query = select(CourseEnrolment.enrollment_id).where(
        CourseEnrolment.user_id == user_id,
        CourseEnrolment.course_id == course_id,
        CourseEnrolment.status.in_(("confirmed", "completed")),
    )
    return (await db.execute(query.limit(1))).first() is not None
