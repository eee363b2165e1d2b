"""Every query the reports, the dashboard and the live view make: on aggregates only, never raw events."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.models import (
    AGGREGATED_REPORTS,
    BUCKETS,
    LEARNERS,
    PERFORMANCE_METRICS,
    USER_ACTIVITIES,
)

ua, pm, ar, ln = USER_ACTIVITIES.c, PERFORMANCE_METRICS.c, AGGREGATED_REPORTS.c, LEARNERS.c


async def activity_totals(*, db: AsyncSession, user_id: uuid.UUID) -> RowMapping:
    """Sums a learner's days: events, lessons, time, assessments and active days."""
    return (await db.execute(_activity_totals(), {"user_id": user_id})).mappings().one()


async def activity_days(*, db: AsyncSession, user_id: uuid.UUID, limit: int) -> Sequence[RowMapping]:
    """A learner's active days, newest first."""
    return (await db.execute(_activity_days(limit), {"user_id": user_id})).mappings().all()


async def learner(*, db: AsyncSession, user_id: uuid.UUID) -> RowMapping | None:
    """Gets a learner's summary row."""
    return (await db.execute(_learner(), {"user_id": user_id})).mappings().first()


async def rank(*, db: AsyncSession, average: float) -> tuple[int, int]:
    """A learner's place by average score (1 is best) and how many learners have a score."""
    above, total = (await db.execute(_rank(), {"average": average})).one()
    return int(above) + 1, int(total)


async def learner_performance(*, db: AsyncSession, user_id: uuid.UUID) -> Sequence[RowMapping]:
    """A learner's rows per course and topic."""
    return (await db.execute(_learner_performance(), {"user_id": user_id})).mappings().all()


# The dashboard's statements, built once with bound parameters (services/kit/statements.py says why).


@functools.cache
def _activity_totals() -> Any:
    return select(
        func.coalesce(func.sum(ua.events), 0).label("events"),
        func.coalesce(func.sum(ua.lessons_completed), 0).label("lessons_completed"),
        func.coalesce(func.sum(ua.time_spent_seconds), 0).label("time_spent_seconds"),
        func.count().label("active_days"),
    ).where(ua.user_id == bindparam("user_id"))


@functools.cache
def _activity_days(limit: int) -> Any:
    return (
        select(ua.day, ua.events, ua.lessons_completed, ua.time_spent_seconds, ua.assessments, ua.score_sum)
        .where(ua.user_id == bindparam("user_id"), ua.events > 0)
        .order_by(ua.day.desc())
        .limit(limit)
    )


@functools.cache
def _learner() -> Any:
    return select(LEARNERS).where(ln.user_id == bindparam("user_id"))


@functools.cache
def _rank() -> Any:
    """Learners with a higher average, and learners with one, in one query."""
    return select(
        func.count().filter(ln.average_percentage > bindparam("average")),
        func.count().filter(ln.average_percentage.is_not(None)),
    )


@functools.cache
def _learner_performance() -> Any:
    return select(PERFORMANCE_METRICS).where(pm.user_id == bindparam("user_id")).order_by(pm.course_id, pm.topic)


async def performance_by_course_and_topic(*, db: AsyncSession, since: date, until: date) -> Sequence[RowMapping]:
    """Sums the daily report rows of a period per course and topic."""
    sums: list[Any] = [
        func.sum(ar[name]).label(name)
        for name in (
            "attempts",
            "score_sum",
            *BUCKETS,
            "enrollments",
            "completions",
            "questions_answered",
            "questions_correct",
            "active_learners",
        )
    ]
    statement = (
        select(ar.course_id, ar.topic, *sums)
        .where(ar.day >= since, ar.day <= until)
        .group_by(ar.course_id, ar.topic)
        .order_by(ar.course_id, ar.topic)
    )
    return (await db.execute(statement)).mappings().all()


async def active_learners_since(*, db: AsyncSession, since: date) -> int:
    """How many learners were active on or after a day."""
    statement = select(func.count(func.distinct(ua.user_id))).where(ua.day >= since)
    return int((await db.execute(statement)).scalar_one())


async def daily_active(*, db: AsyncSession, since: date) -> Sequence[RowMapping]:
    """Active learners per day from a day on."""
    statement = (
        select(ua.day, func.count().label("active_learners")).where(ua.day >= since).group_by(ua.day).order_by(ua.day)
    )
    return (await db.execute(statement)).mappings().all()


async def cohort_sizes(*, db: AsyncSession, since: date) -> Sequence[RowMapping]:
    """Learners per cohort week (the week they registered or were first seen)."""
    statement = (
        select(ln.cohort_week, func.count().label("learners"))
        .where(ln.cohort_week >= since)
        .group_by(ln.cohort_week)
        .order_by(ln.cohort_week)
    )
    return (await db.execute(statement)).mappings().all()


async def cohort_activity(*, db: AsyncSession, since: date) -> Sequence[RowMapping]:
    """Distinct learners of each cohort week active in each later week."""
    statement = (
        select(ln.cohort_week, ua.week, func.count(func.distinct(ua.user_id)).label("active"))
        .select_from(USER_ACTIVITIES.join(LEARNERS, and_(ln.user_id == ua.user_id, ln.cohort_week >= since)))
        .where(ua.week >= since)
        .group_by(ln.cohort_week, ua.week)
    )
    return (await db.execute(statement)).mappings().all()


async def learners_seen_since(*, db: AsyncSession, since: datetime) -> int:
    """How many learners were seen at or after a moment."""
    return int((await db.execute(select(func.count()).where(ln.last_seen_at >= since))).scalar_one())
