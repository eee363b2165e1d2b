"""Every query of the assessments service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.assessments.models import (
    AssessmentResult,
    AssessmentsBase,
    Question,
    StudentRating,
    StudentResponse,
    TestAttempt,
)


def _insert(db: AsyncSession, model: type[AssessmentsBase]) -> Any:
    """An INSERT that can say ON CONFLICT, in the session's dialect."""
    return (pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


async def add_question(*, db: AsyncSession, question: Question) -> None:
    """Adds a live question."""
    db.add(question)
    await db.flush()


async def insert_questions(*, db: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Inserts many questions in one executemany (no ORM objects: the bank is large)."""
    if rows:
        await db.execute(insert(cast(Table, Question.__table__)), list(rows))


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


async def random_questions(*, db: AsyncSession, topic: str, difficulty: int, count: int) -> list[Question]:
    """Gets count random questions of one topic and difficulty straight from the database."""
    query = (
        select(Question)
        .where(Question.topic == topic, Question.difficulty == difficulty)
        .order_by(func.random())
        .limit(count)
    )
    return list((await db.execute(query)).scalars().all())


async def shift_question_ratings(*, db: AsyncSession, deltas: dict[uuid.UUID, float]) -> None:
    """Moves question ratings by a delta each, atomically (concurrent attempts add up).

    Rows are updated in id order so that two attempts sharing questions never deadlock.
    """
    table = cast(Table, Question.__table__)
    statement = (
        update(table).where(table.c.id == bindparam("question_id")).values(rating=table.c.rating + bindparam("delta"))
    )
    params = [{"question_id": q, "delta": d} for q, d in sorted(deltas.items()) if d]
    if params:
        await db.execute(statement, params)


async def get_attempt(*, db: AsyncSession, attempt_id: uuid.UUID) -> TestAttempt | None:
    """Gets a submitted attempt."""
    return await db.get(TestAttempt, attempt_id)


async def claim_attempt(*, db: AsyncSession, attempt: dict[str, Any]) -> bool:
    """Records an attempt as submitted; False when it already was, by this or a concurrent request.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same id to commit or roll back,
    and never aborts the transaction, so the loser can go on to read the winner's result.
    """
    statement = _insert(db, TestAttempt).values(**attempt).on_conflict_do_nothing(index_elements=["id"])
    claimed = await db.execute(statement.returning(TestAttempt.id))
    return claimed.scalar_one_or_none() is not None


async def add_graded_attempt(
    *, db: AsyncSession, responses: Sequence[StudentResponse], result: AssessmentResult
) -> None:
    """Adds an attempt's responses and its result."""
    db.add_all(responses)
    db.add(result)
    await db.flush()


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


async def total_points(*, db: AsyncSession, user_id: uuid.UUID, topic: str | None) -> float:
    """Sums a student's scores, in one topic or over all topics."""
    query = select(func.coalesce(func.sum(AssessmentResult.score), 0.0)).where(AssessmentResult.user_id == user_id)
    if topic is not None:
        query = query.where(AssessmentResult.topic == topic)
    return float((await db.execute(query)).scalar_one())


async def get_rating(*, db: AsyncSession, user_id: uuid.UUID) -> StudentRating | None:
    """Gets a student's rating."""
    return await db.get(StudentRating, user_id)


async def lock_rating(*, db: AsyncSession, user_id: uuid.UUID, start: float) -> StudentRating:
    """Gets a student's rating for update, creating it at the start value the first time."""
    values = {"user_id": user_id, "rating": start, "attempts": 0}
    await db.execute(_insert(db, StudentRating).values(**values).on_conflict_do_nothing(index_elements=["user_id"]))
    query = (
        select(StudentRating)
        .where(StudentRating.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await db.execute(query)).scalar_one()
