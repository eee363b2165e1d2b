"""Every query of the assessments service.

The statements a draw and a submission run are built once, with bound parameters
(services/kit/statements.py says why).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.assessments.models import (
    AssessmentResult,
    AssessmentsBase,
    AttemptQuestion,
    Question,
    StudentRating,
    StudentResponse,
    TestAttempt,
)
from services.kit.statements import (
    cacheable,
    dialect_insert,
    insert_into,
    insert_now,
    insert_unless_present,
    select_by,
)


def _insert_once(db: AsyncSession, model: type[AssessmentsBase], *, returning: str, on: tuple[str, ...] = ()) -> Any:
    """An INSERT of rows not there yet, in the session's dialect (services/kit/statements.py)."""
    return insert_unless_present(db.get_bind().dialect.name, model.__table__, returning=returning, on=on)


async def add_question(*, db: AsyncSession, question: Question) -> None:
    """Adds a live question."""
    db.add(question)
    await db.flush()


async def insert_questions(*, db: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Inserts many questions in one executemany (no ORM objects: the bank is large)."""
    if rows:
        await db.execute(insert_into(cast(Table, Question.__table__)), list(rows))


async def count_questions(*, db: AsyncSession, topic: str | None = None) -> int:
    """Counts questions, in one topic or all."""
    query = select(func.count()).select_from(Question)
    if topic is not None:
        query = query.where(Question.topic == topic)
    return int((await db.execute(query)).scalar_one())


async def topic_counts(*, db: AsyncSession) -> list[tuple[str, int]]:
    """Gets every topic with how many questions it holds, in name order."""
    query = select(Question.topic, func.count()).group_by(Question.topic).order_by(Question.topic)
    return [(topic, int(count)) for topic, count in (await db.execute(query)).all()]


async def get_question(*, db: AsyncSession, question_id: uuid.UUID) -> Question | None:
    """Gets a question by id."""
    return await db.get(Question, question_id)


async def get_questions(*, db: AsyncSession, question_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Question]:
    """Gets questions by id."""
    if not question_ids:
        return {}
    rows = (await db.execute(select(Question).where(Question.id.in_(question_ids)))).scalars().all()
    return {q.id: q for q in rows}


async def pool_question_ids(*, db: AsyncSession, topic: str, difficulty: int, limit: int) -> list[uuid.UUID]:
    """Gets up to limit random question ids of one topic and difficulty (a question pool)."""
    query = (
        select(Question.id)
        .where(Question.topic == topic, Question.difficulty == difficulty)
        .order_by(func.random())
        .limit(limit)
    )
    return list((await db.execute(query)).scalars().all())


async def shift_question_ratings(*, db: AsyncSession, deltas: dict[uuid.UUID, float]) -> None:
    """Moves question ratings by a delta each, atomically (concurrent attempts add up).

    Rows are updated in id order so that two attempts sharing questions never deadlock.
    """
    params = [{"question_id": q, "delta": d} for q, d in sorted(deltas.items()) if d]
    if params:
        await db.execute(_shift_ratings(), params)


@functools.cache
def _shift_ratings() -> Any:
    table = cast(Table, Question.__table__)
    return (
        update(table).where(table.c.id == bindparam("question_id")).values(rating=table.c.rating + bindparam("delta"))
    )


async def get_attempt(*, db: AsyncSession, attempt_id: uuid.UUID) -> TestAttempt | None:
    """Gets an attempt, started or submitted."""
    return await db.get(TestAttempt, attempt_id)


async def start_attempt(
    *, db: AsyncSession, attempt_id: uuid.UUID, user_id: uuid.UUID, topic: str, at: datetime
) -> TestAttempt:
    """Gets an attempt, starting it first if no draw has yet (by this or a concurrent request).

    One statement: an INSERT whose conflict with an existing attempt changes nothing but locks the
    row until the draw commits, and returns the row either way.
    """
    values = {"id": attempt_id, "user_id": user_id, "topic": topic, "started_at": at}
    return (await db.execute(_attempt_start(db.get_bind().dialect.name), values)).scalar_one()


@functools.cache
def _attempt_start(dialect: str) -> Any:
    table = cast(Table, TestAttempt.__table__)
    statement = (
        dialect_insert(dialect, table)
        .on_conflict_do_update(index_elements=[table.c.id], set_={"id": table.c.id})
        .returning(TestAttempt)
    )
    return cacheable(select(TestAttempt).from_statement(statement).execution_options(populate_existing=True))


async def random_questions(
    *, db: AsyncSession, topic: str, difficulty: int, count: int, not_in_attempt: uuid.UUID | None = None
) -> list[Question]:
    """Gets count random questions of one topic and difficulty straight from the database."""
    query = select(Question).where(Question.topic == topic, Question.difficulty == difficulty)
    if not_in_attempt is not None:
        drawn = select(AttemptQuestion.question_id).where(AttemptQuestion.attempt_id == not_in_attempt)
        query = query.where(Question.id.not_in(drawn))
    return list((await db.execute(query.order_by(func.random()).limit(count))).scalars().all())


async def record_drawn(
    *, db: AsyncSession, attempt_id: uuid.UUID, question_ids: Sequence[uuid.UUID], at: datetime
) -> set[uuid.UUID]:
    """Remembers questions an attempt drew; returns those it had not drawn before."""
    if not question_ids:
        return set()
    rows = [{"attempt_id": attempt_id, "question_id": q, "drawn_at": at} for q in question_ids]
    added = await db.execute(_insert_once(db, AttemptQuestion, returning="question_id"), rows)
    return set(added.scalars().all())


async def attempt_with_drawn(
    *, db: AsyncSession, attempt_id: uuid.UUID, question_ids: Sequence[uuid.UUID]
) -> tuple[TestAttempt | None, dict[uuid.UUID, Question]]:
    """Gets an attempt and those of the questions given that it drew, in one query.

    The attempt is None when no draw started it; a question it did not draw is left out.
    """
    params = {"attempt_id": attempt_id, "question_ids": list(question_ids)}
    rows = (await db.execute(_attempt_with_drawn(), params)).all()
    if not rows:
        return None, {}
    return rows[0][0], {question.id: question for _, question in rows if question is not None}


@functools.cache
def _attempt_with_drawn() -> Any:
    drawn = and_(
        AttemptQuestion.attempt_id == TestAttempt.id,
        AttemptQuestion.question_id.in_(bindparam("question_ids", expanding=True)),
    )
    return (
        select(TestAttempt, Question)
        .outerjoin(AttemptQuestion, drawn)
        .outerjoin(Question, Question.id == AttemptQuestion.question_id)
        .where(TestAttempt.id == bindparam("attempt_id"))
    )


async def mark_submitted(
    *, db: AsyncSession, attempt_id: uuid.UUID, question_count: int, duration_seconds: int, at: datetime
) -> bool:
    """Marks a started attempt submitted; False when it already was, by this or a concurrent request.

    The conditional UPDATE waits for a concurrent submission of the same attempt to commit or roll
    back, then re-checks ``submitted_at``: exactly one submission scores the attempt. A table
    statement: the attempt loaded in the session keeps what it read (nothing reads it after).
    """
    params = {"attempt_id": attempt_id, "question_count": question_count, "duration_seconds": duration_seconds}
    return (await db.execute(_mark_submitted(), params | {"at": at})).scalar_one_or_none() is not None


@functools.cache
def _mark_submitted() -> Any:
    table = cast(Table, TestAttempt.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("attempt_id"), table.c.submitted_at.is_(None))
        .values(
            question_count=bindparam("question_count"),
            duration_seconds=bindparam("duration_seconds"),
            submitted_at=bindparam("at"),
        )
        .returning(table.c.id)
    )


async def add_graded_attempt(
    *, db: AsyncSession, responses: Sequence[StudentResponse], result: AssessmentResult
) -> None:
    """Adds an attempt's responses (one executemany) and its result; the objects stay out of the session."""
    if responses:
        table = cast(Table, StudentResponse.__table__)
        rows = [{column.key: getattr(r, column.key) for column in table.columns} for r in responses]
        await db.execute(insert_into(table), rows)
    await insert_now(db, result)


async def get_result(*, db: AsyncSession, result_id: uuid.UUID) -> AssessmentResult | None:
    """Gets a result by id."""
    return await db.get(AssessmentResult, result_id)


async def get_result_for_attempt(*, db: AsyncSession, attempt_id: uuid.UUID) -> AssessmentResult | None:
    """Gets the result of an attempt."""
    query = select(AssessmentResult).where(AssessmentResult.attempt_id == attempt_id)
    return (await db.execute(query)).scalar_one_or_none()


async def get_responses(*, db: AsyncSession, attempt_id: uuid.UUID) -> list[StudentResponse]:
    """Gets an attempt's responses."""
    query = select(StudentResponse).where(StudentResponse.attempt_id == attempt_id).order_by(StudentResponse.position)
    return list((await db.execute(query)).scalars().all())


async def total_points(*, db: AsyncSession, user_id: uuid.UUID, topic: str) -> tuple[float, float]:
    """A student's summed scores in one topic and over all topics, in one query."""
    in_topic, overall = (await db.execute(_total_points(), {"user_id": user_id, "topic": topic})).one()
    return float(in_topic), float(overall)


@functools.cache
def _total_points() -> Any:
    # The attempt's own result is in the table already: add_graded_attempt writes it by a table INSERT.
    scores = AssessmentResult.score
    return select(
        func.coalesce(func.sum(scores).filter(AssessmentResult.topic == bindparam("topic")), 0.0),
        func.coalesce(func.sum(scores), 0.0),
    ).where(AssessmentResult.user_id == bindparam("user_id"))


async def get_rating(*, db: AsyncSession, user_id: uuid.UUID) -> StudentRating | None:
    """Gets a student's rating."""
    return (await db.execute(select_by(StudentRating, "user_id"), {"key": user_id})).scalar_one_or_none()


async def lock_rating(*, db: AsyncSession, user_id: uuid.UUID, start: float) -> tuple[float, int]:
    """Gets a student's rating and attempt count for update, creating the rating at the start value the first time."""
    values = {"user_id": user_id, "rating": start, "attempts": 0}
    rating, attempts = (await db.execute(_rating_lock(db.get_bind().dialect.name), values)).one()
    return float(rating), int(attempts)


@functools.cache
def _rating_lock(dialect: str) -> Any:
    """One statement, built once per dialect: an INSERT whose conflict with an existing row updates
    nothing but locks it, as FOR UPDATE would, and returns the row either way."""
    table = cast(Table, StudentRating.__table__)
    statement = (
        dialect_insert(dialect, table)
        .on_conflict_do_update(index_elements=[table.c.user_id], set_={"user_id": table.c.user_id})
        .returning(table.c.rating, table.c.attempts)
    )
    # An ON CONFLICT statement has no cache key of its own: without one it is compiled at each use.
    return cacheable(statement)


async def set_rating(*, db: AsyncSession, user_id: uuid.UUID, rating: float, attempts: int, at: datetime) -> None:
    """Writes a locked rating's new value and attempt count."""
    await db.execute(_set_rating(), {"student": user_id, "new_rating": rating, "new_attempts": attempts, "at": at})


@functools.cache
def _set_rating() -> Any:
    table = cast(Table, StudentRating.__table__)
    return (
        update(table)
        .where(table.c.user_id == bindparam("student"))
        .values(rating=bindparam("new_rating"), attempts=bindparam("new_attempts"), updated_at=bindparam("at"))
    )
