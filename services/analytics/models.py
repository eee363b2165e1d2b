"""The analytics service's tables: raw events, and the aggregates every report reads instead of them.

``analytics_events`` is range-partitioned by month on PostgreSQL (created by the migration with
raw DDL, see ``partitions.py``); the declaration here is what SQLite gets and what queries use.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from services.kit.events import define_inbox

# Aggregates keyed by course or topic use these instead of NULL (primary key columns cannot be NULL).
NO_COURSE = uuid.UUID(int=0)
NO_TOPIC = ""
BUCKETS = tuple(f"bucket_{edge:02d}" for edge in range(0, 100, 10))
"""Score histogram columns: ``bucket_00`` counts 0–9.99 %, …, ``bucket_90`` counts 90–100 %."""


class AnalyticsBase(DeclarativeBase):
    """The analytics service's own tables (its own schema or file)."""


metadata = AnalyticsBase.metadata


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, server_default="0")


def _buckets() -> list[Column[int]]:
    return [_count(name) for name in BUCKETS]


EVENTS = Table(
    "analytics_events",
    metadata,
    # SQLite's rowid; on PostgreSQL a sequence, and the primary key is (event_id, occurred_at).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("type", String(64), nullable=False),
    Column("course_id", Uuid),
    Column("lesson_id", Uuid),
    Column("properties", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_id", "occurred_at", name="uq_analytics_events_event"),
    # Never reuse a seq: the aggregator's watermark assumes every new event gets a higher one.
    sqlite_autoincrement=True,
)

USER_ACTIVITIES = Table(
    "user_activities",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("week", Date, nullable=False),
    _count("events"),
    _count("lessons_completed"),
    _count("time_spent_seconds"),
    _count("assessments"),
    Column("score_sum", Float, nullable=False, server_default="0"),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_user_activities_day", "day"),
    Index("ix_user_activities_week_user", "week", "user_id"),
)

PERFORMANCE_METRICS = Table(
    "performance_metrics",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("course_id", Uuid, primary_key=True),
    Column("topic", String(120), primary_key=True),
    _count("attempts"),
    Column("score_sum", Float, nullable=False, server_default="0"),
    Column("best_percentage", Float),
    *_buckets(),
    _count("questions_answered"),
    _count("questions_correct"),
    _count("lessons_completed"),
    Column("progress_percent", Float),
    Column("completed", Boolean, nullable=False, server_default=false()),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

AGGREGATED_REPORTS = Table(
    "aggregated_reports",
    metadata,
    Column("course_id", Uuid, primary_key=True),
    Column("topic", String(120), primary_key=True),
    Column("day", Date, primary_key=True),
    _count("active_learners"),
    _count("events"),
    _count("enrollments_started"),
    _count("enrollments"),
    _count("completions"),
    _count("payments"),
    Column("revenue_paise", BigInteger, nullable=False, server_default="0"),
    _count("lessons_completed"),
    _count("time_spent_seconds"),
    _count("attempts"),
    Column("score_sum", Float, nullable=False, server_default="0"),
    *_buckets(),
    _count("questions_answered"),
    _count("questions_correct"),
    Index("ix_aggregated_reports_day", "day"),
)

LEARNERS = Table(
    "learners",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("cohort_week", Date, nullable=False),
    Column("registered_at", DateTime(timezone=True)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    _count("assessments"),
    Column("score_sum", Float, nullable=False, server_default="0"),
    Column("average_percentage", Float),
    Index("ix_learners_average", "average_percentage"),
    Index("ix_learners_last_seen", "last_seen_at"),
    Index("ix_learners_cohort", "cohort_week"),
)

# Who was active in a course (or topic) on a day: how ``active_learners`` is counted exactly once.
DAILY_LEARNERS = Table(
    "daily_learners",
    metadata,
    Column("day", Date, primary_key=True),
    Column("course_id", Uuid, primary_key=True),
    Column("topic", String(120), primary_key=True),
    Column("user_id", Uuid, primary_key=True),
)

AGGREGATION_STATE = Table(
    "aggregation_state",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("watermark", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

INBOX = define_inbox(metadata)
