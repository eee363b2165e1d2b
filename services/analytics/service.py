"""Taking in learning events: checked, authorised, stored once, acknowledged only when committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import repository
from services.analytics.aggregator import Aggregator, BackgroundJobs
from services.analytics.live import EventRate
from services.analytics.partitions import PartitionKeeper, months_between, retention_start
from services.analytics.schemas import ActivityIn, ActivityRecorded, EventIn, IngestResult
from services.analytics.settings import AnalyticsSettings
from services.analytics.telemetry import BATCH_SIZE, INGESTED
from services.kit.auth import Identity
from services.kit.errors import Forbidden, InvalidInput
from services.kit.time import utcnow


@dataclass(frozen=True)
class AnalyticsContext:
    """What the analytics rules need besides the database session."""

    settings: AnalyticsSettings
    partitions: PartitionKeeper
    aggregator: Aggregator
    jobs: BackgroundJobs
    rate: EventRate


def invalid_event(index: int, field: str, message: str) -> InvalidInput:
    """A 422 naming the event (by its place in the batch) and the field that is wrong."""
    path = f"events.{index}.{field}"
    return InvalidInput(f"Event {index} is invalid: {field} {message}", errors=[{"field": path, "message": message}])


def _check_window(rows: list[repository.Row], *, oldest: datetime, newest: datetime) -> None:
    for index, row in enumerate(rows):
        if row[1] < oldest:
            raise invalid_event(index, "occurred_at", f"is before {oldest.date().isoformat()}, past retention")
        if row[1] > newest:
            raise invalid_event(index, "occurred_at", "is in the future")


async def store_events(*, db: AsyncSession, ctx: AnalyticsContext, rows: list[repository.Row]) -> int:
    """Stores rows whose dates are within retention; returns how many were new."""
    settings, now = ctx.settings, utcnow()
    first, last = min(r[1] for r in rows), max(r[1] for r in rows)
    oldest = retention_start(now, settings.retention_months)
    newest = now + timedelta(seconds=settings.future_skew_seconds)
    if first < oldest or last > newest:
        _check_window(rows, oldest=oldest, newest=newest)
    await ctx.partitions.ensure(months_between(first, last))
    return await repository.insert_events(db=db, rows=rows)


async def ingest_events(
    *, db: AsyncSession, ctx: AnalyticsContext, identity: Identity, events: list[EventIn]
) -> IngestResult:
    """Stores a batch of events all or nothing; a student may only send their own."""
    own = None if identity.is_admin else str(identity.user_id)
    limit = ctx.settings.max_properties_bytes
    dumps = orjson.dumps
    rows: list[repository.Row] = []
    append = rows.append
    # One plain loop: at a thousand events a request, per-event overhead is the throughput.
    for index, event in enumerate(events):
        properties = event.get("properties")
        blob = dumps(properties) if properties else b"{}"
        if len(blob) > limit:
            raise invalid_event(index, "properties", f"is {len(blob)} bytes of JSON; the limit is {limit}")
        user_id = event["user_id"]
        if own is not None and user_id.lower() != own:
            raise Forbidden(f"Event {index} is another learner's; students can only send their own", index=index)
        append(
            (
                event["event_id"],
                event["occurred_at"],
                user_id,
                event["type"],
                event.get("course_id"),
                event.get("lesson_id"),
                blob.decode(),
            )
        )
    stored = await store_events(db=db, ctx=ctx, rows=rows)
    service = ctx.settings.service_name
    BATCH_SIZE.labels(service).observe(len(rows))
    INGESTED.labels(service, "http", "stored").inc(stored)
    INGESTED.labels(service, "http", "duplicate").inc(len(rows) - stored)
    return IngestResult(received=len(rows), stored=stored, duplicates=len(rows) - stored)


async def track_activity(
    *, db: AsyncSession, ctx: AnalyticsContext, identity: Identity, request: ActivityIn
) -> ActivityRecorded:
    """Records a learner's heartbeat as an ``activity`` event; its seconds count as time spent."""
    event_id = uuid.uuid4()
    properties: dict[str, Any] = {"seconds": request.seconds, "activity": request.activity}
    row: repository.Row = (
        str(event_id),
        utcnow(),
        str(identity.user_id),
        "activity",
        str(request.course_id) if request.course_id else None,
        str(request.lesson_id) if request.lesson_id else None,
        orjson.dumps(properties).decode(),
    )
    await store_events(db=db, ctx=ctx, rows=[row])
    INGESTED.labels(ctx.settings.service_name, "http", "stored").inc()
    return ActivityRecorded(event_id=event_id, seconds=request.seconds)
