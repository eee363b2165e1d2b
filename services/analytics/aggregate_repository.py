"""Upserts into the aggregates: folded from a range of raw events in SQL, or applied from Deltas."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Table, Uuid, and_, bindparam, case, func, literal, or_, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.deltas import ACTIVITY_COUNTS, PERFORMANCE_COUNTS, REPORT_COUNTS, Deltas
from services.analytics.dialect import greatest, least, utc_day, utc_week
from services.analytics.models import (
    AGGREGATED_REPORTS,
    DAILY_LEARNERS,
    EVENTS,
    LEARNERS,
    NO_COURSE,
    NO_TOPIC,
    PERFORMANCE_METRICS,
    USER_ACTIVITIES,
)
from services.kit.statements import cacheable, dialect_insert

Insert = postgresql.Insert | sqlite.Insert


def _merge(
    stmt: Insert,
    table: Table,
    keys: Sequence[str],
    *,
    add: Iterable[str] = (),
    high: Iterable[str] = (),
    low: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """ON CONFLICT: adds ``add`` columns, keeps the highest of ``high`` and the lowest of ``low``."""
    new = stmt.excluded
    changes: dict[str, Any] = {name: table.c[name] + new[name] for name in add}
    changes |= {name: greatest(table.c[name], new[name]) for name in high}
    changes |= {name: least(table.c[name], new[name]) for name in low}
    changes |= dict(extra or {})
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes)


def _learner_upsert(stmt: Insert, *, scores: bool) -> Any:
    extra: dict[str, Any] = {"registered_at": func.coalesce(stmt.excluded.registered_at, LEARNERS.c.registered_at)}
    add: tuple[str, ...] = ()
    if scores:
        add = ("assessments", "score_sum")
        extra["average_percentage"] = (LEARNERS.c.score_sum + stmt.excluded.score_sum) / func.nullif(
            LEARNERS.c.assessments + stmt.excluded.assessments, 0
        )
    return _merge(
        stmt,
        LEARNERS,
        ["user_id"],
        add=add,
        high=["last_seen_at"],
        low=["cohort_week", "first_seen_at"],
        extra=extra,
    )


async def _upsert_rows(db: AsyncSession, statement: Any, rows: Mapping[Any, dict[str, Any]]) -> None:
    # Sorted by key so that concurrent writers lock rows in one order and cannot deadlock each other.
    if rows:
        await db.execute(statement, [rows[key] for key in sorted(rows, key=str)])


@dataclass(frozen=True)
class _DeltaStatements:
    learners: Any
    activities: Any
    performance: Any
    presence: Any
    reports: Any


@functools.cache
def _delta_statements(dialect: str) -> _DeltaStatements:
    """The upserts ``apply_deltas`` runs, built once per dialect: every consumed event runs all five,
    and building them cost more than the rows they write. SQLAlchemy keeps no compiled form of an
    upsert (services/kit/statements.py): ``cacheable`` lets it keep these."""
    insert = functools.partial(dialect_insert, dialect)
    perf = insert(PERFORMANCE_METRICS)
    return _DeltaStatements(
        learners=cacheable(_learner_upsert(insert(LEARNERS), scores=True)),
        activities=cacheable(
            _merge(
                insert(USER_ACTIVITIES),
                USER_ACTIVITIES,
                ["user_id", "day"],
                add=ACTIVITY_COUNTS,
                high=["last_seen_at"],
                low=["first_seen_at"],
            )
        ),
        performance=cacheable(
            _merge(
                perf,
                PERFORMANCE_METRICS,
                ["user_id", "course_id", "topic"],
                add=PERFORMANCE_COUNTS,
                high=["best_percentage", "lessons_completed", "progress_percent", "updated_at"],
                extra={"completed": or_(PERFORMANCE_METRICS.c.completed, perf.excluded.completed)},
            )
        ),
        presence=cacheable(insert(DAILY_LEARNERS).on_conflict_do_nothing().returning(*_PRESENCE_KEY)),
        reports=cacheable(_report_upsert(insert(AGGREGATED_REPORTS))),
    )


async def apply_deltas(*, db: AsyncSession, deltas: Deltas) -> None:
    """Adds consumed events' changes to every aggregate (and counts newly active learners)."""
    statements = _delta_statements(db.bind.dialect.name)
    for row in deltas.learners.values():
        row["average_percentage"] = row["score_sum"] / row["assessments"] if row["assessments"] else None
    await _upsert_rows(db, statements.learners, deltas.learners)
    await _upsert_rows(db, statements.activities, deltas.activities)
    await _upsert_rows(db, statements.performance, deltas.performance)
    if deltas.presence:
        rows = [
            dict(zip(("day", "course_id", "topic", "user_id"), key, strict=True)) for key in sorted(deltas.presence)
        ]
        fresh = Counter(tuple(r) for r in (await db.execute(statements.presence, rows)).all())
        for (day, course_id, topic), count in fresh.items():
            deltas.report(course_id, topic, day)["active_learners"] += count
    await _upsert_rows(db, statements.reports, deltas.reports)


_PRESENCE_KEY = (DAILY_LEARNERS.c.day, DAILY_LEARNERS.c.course_id, DAILY_LEARNERS.c.topic)


def _report_upsert(stmt: Insert, counts: Sequence[str] = REPORT_COUNTS) -> Any:
    return _merge(stmt, AGGREGATED_REPORTS, ["course_id", "topic", "day"], add=counts)


async def performance_row(
    *, db: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID, topic: str = NO_TOPIC
) -> dict[str, Any] | None:
    """Reads (and locks, on PostgreSQL) one learner's row for a course or topic."""
    params = {"user_id": user_id, "course_id": course_id, "topic": topic}
    row = (await db.execute(_performance_row(), params)).mappings().first()
    return dict(row) if row is not None else None


@functools.cache
def _performance_row() -> Any:
    return (
        select(PERFORMANCE_METRICS)
        .where(
            PERFORMANCE_METRICS.c.user_id == bindparam("user_id"),
            PERFORMANCE_METRICS.c.course_id == bindparam("course_id"),
            PERFORMANCE_METRICS.c.topic == bindparam("topic"),
        )
        .with_for_update()
    )


async def reopen_course(
    *, db: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID, lessons_completed: int, percent: float
) -> None:
    """Marks a learner's course not completed again, with the lessons still done."""
    await db.execute(
        update(PERFORMANCE_METRICS)
        .where(
            PERFORMANCE_METRICS.c.user_id == user_id,
            PERFORMANCE_METRICS.c.course_id == course_id,
            PERFORMANCE_METRICS.c.topic == NO_TOPIC,
        )
        .values(completed=False, lessons_completed=lessons_completed, progress_percent=percent)
    )


async def fold_events(*, db: AsyncSession, after: int, through: int, now: datetime) -> None:
    """Folds the raw events with a seq in (after, through] into every aggregate, in SQL.

    Events whose type has a dot (``assessment.completed``…) were applied by their handler when
    consumed and are skipped; clients can only send dotless types.
    """
    folds = _fold_statements(db.bind.dialect.name)
    span = {"after": after, "through": through}
    for statement in folds.upserts:
        await db.execute(statement, {**span, "now": now})
    fresh = Counter(tuple(r) for r in (await db.execute(folds.presence, span)).all())
    rows = {
        key: {"course_id": key[1], "topic": key[2], "day": key[0], "active_learners": count}
        for key, count in fresh.items()
    }
    await _upsert_rows(db, folds.new_learners, rows)


@dataclass(frozen=True)
class _FoldStatements:
    upserts: tuple[Any, ...]  # each takes :after, :through and :now
    presence: Any  # who was active where each day; returns each first appearance
    new_learners: Any  # adds those first appearances to the reports' active learners


@functools.cache
def _fold_statements(dialect: str) -> _FoldStatements:
    """``fold_events``' statements, built once per dialect with the range and time as parameters."""
    insert = functools.partial(dialect_insert, dialect)
    e = EVENTS.c
    where = and_(e.seq > bindparam("after"), e.seq <= bindparam("through"), e.type.not_like("%.%"))
    day, week = utc_day(e.occurred_at), utc_week(e.occurred_at)
    seconds = func.coalesce(e.properties["seconds"].as_integer(), 0)
    course = func.coalesce(e.course_id, literal(NO_COURSE, Uuid))
    topic = func.coalesce(e.properties["topic"].as_string(), NO_TOPIC)
    question = e.type == "question_answered"
    answered = case((question, 1), else_=0)
    correct = case((and_(question, e.properties["correct"].as_boolean()), 1), else_=0)
    upserts = []

    learners = select(e.user_id, func.min(week), func.min(e.occurred_at), func.max(e.occurred_at)).where(where)
    stmt = insert(LEARNERS).from_select(
        ["user_id", "cohort_week", "first_seen_at", "last_seen_at"], learners.group_by(e.user_id)
    )
    upserts.append(_learner_upsert(stmt, scores=False))

    activity = select(
        e.user_id, day, week, func.count(), func.sum(seconds), func.min(e.occurred_at), func.max(e.occurred_at)
    ).where(where)
    stmt = insert(USER_ACTIVITIES).from_select(
        ["user_id", "day", "week", "events", "time_spent_seconds", "first_seen_at", "last_seen_at"],
        activity.group_by(e.user_id, day, week),
    )
    upserts.append(
        _merge(
            stmt,
            USER_ACTIVITIES,
            ["user_id", "day"],
            add=["events", "time_spent_seconds"],
            high=["last_seen_at"],
            low=["first_seen_at"],
        )
    )

    now = bindparam("now", type_=DateTime(timezone=True))
    practice = select(e.user_id, course, topic, func.count(), func.sum(correct), now).where(where, question)
    stmt = insert(PERFORMANCE_METRICS).from_select(
        ["user_id", "course_id", "topic", "questions_answered", "questions_correct", "updated_at"],
        practice.group_by(e.user_id, course, topic),
    )
    upserts.append(
        _merge(
            stmt,
            PERFORMANCE_METRICS,
            ["user_id", "course_id", "topic"],
            add=["questions_answered", "questions_correct"],
            high=["updated_at"],
        )
    )

    report_counts = ["events", "time_spent_seconds", "questions_answered", "questions_correct"]
    measures = (func.count(), func.sum(seconds), func.sum(answered), func.sum(correct))
    overall = select(course, literal(NO_TOPIC), day, *measures).where(where).group_by(course, day)
    by_topic = select(course, topic, day, *measures).where(where, topic != NO_TOPIC).group_by(course, topic, day)
    for grouped in (overall, by_topic):
        stmt = insert(AGGREGATED_REPORTS).from_select(["course_id", "topic", "day", *report_counts], grouped)
        upserts.append(_report_upsert(stmt, report_counts))

    everyone = select(day, course, literal(NO_TOPIC), e.user_id).where(where)
    in_topics = select(day, course, topic, e.user_id).where(where, topic != NO_TOPIC)
    presence = (
        insert(DAILY_LEARNERS)
        .from_select(["day", "course_id", "topic", "user_id"], union(everyone, in_topics))
        .on_conflict_do_nothing()
        .returning(*_PRESENCE_KEY)
    )
    return _FoldStatements(
        upserts=tuple(cacheable(u) for u in upserts),
        presence=cacheable(presence),
        new_learners=cacheable(_report_upsert(insert(AGGREGATED_REPORTS), counts=["active_learners"])),
    )
