"""Queries on raw events: the ingest write path, the aggregation fence and watermark, and partitions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.analytics.models import AGGREGATION_STATE, DAILY_LEARNERS, EVENTS
from services.kit.errors import register_dependency_error
from services.kit.time import utcnow

# The COPY path talks to asyncpg directly: its errors arrive without SQLAlchemy's wrapping, so a
# lost connection or a deadlock between two clients resending the same ids is a 503 to retry.
register_dependency_error(asyncpg.PostgresConnectionError, "database")
register_dependency_error(asyncpg.exceptions.ConnectionDoesNotExistError, "database")
register_dependency_error(asyncpg.exceptions.DeadlockDetectedError, "database")

tracer = trace.get_tracer("cerebrum.analytics")

Row = tuple[str, datetime, str, str, str | None, str | None, str]
"""An event ready for COPY: event_id, occurred_at, user_id, type, course_id, lesson_id, properties (JSON)."""

COLUMNS = ("event_id", "occurred_at", "user_id", "type", "course_id", "lesson_id", "properties")
WATERMARK = "events"
_INGEST_LOCK = "hashtextextended(current_schema() || '/analytics-ingest', 0)"
_PARTITION_LOCK = "hashtextextended(current_schema() || '/analytics-partitions', 0)"

# A per-connection scratch table a COPY lands in when some of its ids may be stored already; moved
# into the partitioned table with ON CONFLICT DO NOTHING, which COPY itself cannot do.
_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS analytics_staging (
    event_id uuid, occurred_at timestamptz, user_id uuid, type text,
    course_id uuid, lesson_id uuid, properties jsonb
) ON COMMIT DELETE ROWS
"""
_MOVE_STAGED = """
WITH staged AS (
    DELETE FROM analytics_staging
    RETURNING event_id, occurred_at, user_id, type, course_id, lesson_id, properties
)
INSERT INTO analytics_events (event_id, occurred_at, user_id, type, course_id, lesson_id, properties)
SELECT event_id, occurred_at, user_id, type, course_id, lesson_id, properties FROM staged
ON CONFLICT DO NOTHING
"""


def install_staging(engine: AsyncEngine) -> None:
    """Gives every new PostgreSQL connection of the engine its staging table."""

    @event.listens_for(engine.sync_engine, "connect")
    def _create_staging(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda conn: conn.execute(_STAGING_DDL))


async def insert_events(*, db: AsyncSession, rows: Sequence[Row], copy_first: bool = True) -> int:
    """Stores events, skipping ids stored before; returns how many were new.

    ``copy_first`` COPYs straight into the partitioned table inside a savepoint, which costs half
    of the staging path and fails only when a batch holds an id stored before (a client's retry);
    then, as always without it, rows go through the staging table and ON CONFLICT DO NOTHING.
    """
    conn = await db.connection()
    if conn.dialect.name == "sqlite":
        return await _insert_events_sqlite(conn, rows)
    # Held until commit: the aggregator's fence waits for every ingest in flight (see ingest_fence).
    await conn.execute(text(f"SELECT pg_advisory_xact_lock_shared({_INGEST_LOCK})"))
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    # The raw driver is below the SQLAlchemy instrumentation: the COPY gets its own span.
    with tracer.start_as_current_span("COPY analytics_events", kind=SpanKind.CLIENT) as span:
        span.set_attributes({"db.system": "postgresql", "db.operation.name": "COPY", "cerebrum.events": len(rows)})
        if copy_first:
            await raw.execute("SAVEPOINT analytics_copy")
            try:
                await raw.copy_records_to_table("analytics_events", records=rows, columns=COLUMNS)
                return len(rows)
            except asyncpg.UniqueViolationError:
                await raw.execute("ROLLBACK TO SAVEPOINT analytics_copy")
                span.set_attribute("cerebrum.analytics.resend", True)
        await raw.copy_records_to_table("analytics_staging", records=rows, columns=COLUMNS)
        status: str = await raw.execute(_MOVE_STAGED)
        return int(status.rsplit(" ", 1)[-1])


async def _insert_events_sqlite(conn: AsyncConnection, rows: Sequence[Row]) -> int:
    now = utcnow()
    values = [
        {
            "event_id": uuid.UUID(r[0]),
            "occurred_at": r[1].astimezone(UTC),
            "user_id": uuid.UUID(r[2]),
            "type": r[3],
            "course_id": uuid.UUID(r[4]) if r[4] else None,
            "lesson_id": uuid.UUID(r[5]) if r[5] else None,
            "properties": orjson.loads(r[6]),
            "ingested_at": now,
        }
        for r in rows
    ]
    before = (await conn.execute(text("SELECT total_changes()"))).scalar_one()
    await conn.execute(sqlite.insert(EVENTS).on_conflict_do_nothing(), values)
    after = (await conn.execute(text("SELECT total_changes()"))).scalar_one()
    return int(after - before)


async def ingest_fence(*, conn: AsyncConnection) -> int:
    """The highest event seq below which every ingest has committed (or given up).

    On PostgreSQL an ingest holds a shared advisory lock from taking its seqs until it commits;
    taking the lock exclusively waits for those in flight, so every seq handed out before is final.
    SQLite has one writer at a time, so its highest committed seq already is.
    """
    if conn.dialect.name == "sqlite":
        return int((await conn.execute(select(func.coalesce(func.max(EVENTS.c.seq), 0)))).scalar_one())
    await conn.execute(text(f"SELECT pg_advisory_xact_lock({_INGEST_LOCK})"))
    row = (await conn.execute(text("SELECT last_value, is_called FROM analytics_events_seq"))).one()
    return int(row.last_value) if row.is_called else 0


async def claim_watermark(*, db: AsyncSession) -> int | None:
    """Locks and reads the aggregator's watermark; None when another replica is folding."""
    statement = (
        select(AGGREGATION_STATE.c.watermark)
        .where(AGGREGATION_STATE.c.name == WATERMARK)
        .with_for_update(skip_locked=True)
    )
    value = (await db.execute(statement)).scalar_one_or_none()
    return None if value is None else int(value)


async def set_watermark(*, db: AsyncSession, watermark: int) -> None:
    """Moves the aggregator's watermark."""
    await db.execute(
        update(AGGREGATION_STATE)
        .where(AGGREGATION_STATE.c.name == WATERMARK)
        .values(watermark=watermark, updated_at=utcnow())
    )


async def ensure_watermark(*, db: AsyncSession) -> None:
    """Creates the watermark row if missing."""
    exists = (await db.execute(select(AGGREGATION_STATE.c.name).where(AGGREGATION_STATE.c.name == WATERMARK))).first()
    if exists is None:
        await db.execute(insert(AGGREGATION_STATE).values(name=WATERMARK, watermark=0, updated_at=utcnow()))


async def read_watermark(*, db: AsyncSession) -> int:
    """Reads the aggregator's watermark without waiting for a folding replica."""
    statement = select(AGGREGATION_STATE.c.watermark).where(AGGREGATION_STATE.c.name == WATERMARK)
    return int((await db.execute(statement)).scalar_one_or_none() or 0)


async def oldest_unfolded(*, db: AsyncSession, watermark: int) -> datetime | None:
    """When the first event past the watermark was stored; None when there is none."""
    statement = select(EVENTS.c.ingested_at).where(EVENTS.c.seq > watermark).order_by(EVENTS.c.seq).limit(1)
    return (await db.execute(statement)).scalar_one_or_none()


async def count_range(*, db: AsyncSession, after: int, through: int) -> int:
    """Counts the events with a seq in (after, through]."""
    statement = select(func.count()).where(EVENTS.c.seq > after, EVENTS.c.seq <= through)
    return int((await db.execute(statement)).scalar_one())


async def list_partitions(*, conn: AsyncConnection) -> list[str]:
    """Names the partitions of analytics_events in the current schema."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('analytics_events') ORDER BY c.relname"
        )
    )
    return [str(name) for name in rows.scalars()]


async def _partition_lock(conn: AsyncConnection) -> None:
    # Changing partitions locks the whole table: give up rather than queue behind a long transaction
    # (or behind a transaction of this very process that is waiting for us).
    await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
    await conn.execute(text(f"SELECT pg_advisory_xact_lock({_PARTITION_LOCK})"))


async def create_partitions(*, conn: AsyncConnection, partitions: dict[str, tuple[date, date]]) -> None:
    """Creates monthly partitions ``{name: (first day, next month's first day)}`` unless they exist."""
    await _partition_lock(conn)
    for name, (start, end) in partitions.items():
        await conn.execute(
            text(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF analytics_events '
                f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
            )
        )


async def drop_partitions(*, conn: AsyncConnection, names: Sequence[str]) -> None:
    """Drops partitions (their rows go with them)."""
    if not names:
        return
    await _partition_lock(conn)
    for name in names:
        await conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


async def delete_events_before(*, conn: AsyncConnection, cutoff: datetime) -> None:
    """Deletes raw events older than the cutoff (SQLite, which has no partitions)."""
    await conn.execute(delete(EVENTS).where(EVENTS.c.occurred_at < cutoff.astimezone(UTC)))


async def delete_daily_learners_before(*, conn: AsyncConnection, cutoff: date) -> None:
    """Forgets who was active on days past retention (the counts stay in the reports)."""
    await conn.execute(delete(DAILY_LEARNERS).where(DAILY_LEARNERS.c.day < cutoff))


async def keep_only_properties(*, db: AsyncSession, user_id: uuid.UUID, keys: Sequence[str]) -> int:
    """Cuts a user's client events (dotless types) down to the given properties; returns how many changed."""
    rows = await db.execute(
        select(EVENTS.c.event_id, EVENTS.c.occurred_at, EVENTS.c.properties).where(
            EVENTS.c.user_id == user_id, EVENTS.c.type.not_like("%.%")
        )
    )
    changed = 0
    for row in rows.all():
        properties = row.properties if isinstance(row.properties, dict) else orjson.loads(row.properties)
        kept = {k: v for k, v in properties.items() if k in keys}
        if kept == properties:
            continue
        await db.execute(
            update(EVENTS)
            .where(EVENTS.c.event_id == row.event_id, EVENTS.c.occurred_at == row.occurred_at)
            .values(properties=kept)
        )
        changed += 1
    return changed
