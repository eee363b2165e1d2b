from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from services.analytics import reports, service
from services.analytics.deps import AnalyticsDep, EventsDep
from services.analytics.schemas import (
    ActivityIn,
    ActivityRecorded,
    Dashboard,
    Engagement,
    IngestResult,
    PerformanceReport,
    ingest_request_schema,
)
from services.kit.deps import AdminUser, CurrentUser, KitDep, SessionDep

router = APIRouter(prefix="/analytics", tags=["analytics"])


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": ingest_request_schema(1000)},
    responses={
        413: {"description": "More events than a batch may hold"},
        415: {"description": "A body that is not application/json (a text/plain beacon is refused)"},
    },
)
async def ingest_events(identity: CurrentUser, events: EventsDep, db: SessionDep, ctx: AnalyticsDep) -> IngestResult:
    """Stores one event or a batch of up to 1,000; answered once committed. Resent event ids are ignored."""
    return await service.ingest_events(db=db, ctx=ctx, identity=identity, events=events)


@router.post("/track-activity", status_code=status.HTTP_202_ACCEPTED)
async def track_activity(
    body: ActivityIn, identity: CurrentUser, db: SessionDep, ctx: AnalyticsDep
) -> ActivityRecorded:
    """Records the caller's heartbeat: seconds spent on a lesson or activity."""
    return await service.track_activity(db=db, ctx=ctx, identity=identity, request=body)


@router.get("/dashboard/{user_id}")
async def get_dashboard(user_id: uuid.UUID, identity: CurrentUser, db: SessionDep) -> Dashboard:
    """Gets a learner's lessons, time, scores over time, streak and rank (their own, or any for admins)."""
    return await reports.dashboard(db=db, identity=identity, user_id=user_id)


@router.get("/reports/performance")
async def get_performance_report(
    _admin: AdminUser, db: SessionDep, since: date | None = None, until: date | None = None
) -> PerformanceReport:
    """Reports score distribution, average and completion rate per course and topic (admins)."""
    return await reports.performance_report(db=db, since=since, until=until)


@router.get("/metrics/engagement")
async def get_engagement(
    _admin: AdminUser,
    db: SessionDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    weeks: Annotated[int, Query(ge=1, le=52)] = 8,
) -> Engagement:
    """Reports daily, weekly and monthly active learners and retention by cohort week (admins)."""
    return await reports.engagement(db=db, days=days, weeks=weeks)


@router.get("/live", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def live(
    request: Request,
    _admin: AdminUser,
    kit: KitDep,
    ctx: AnalyticsDep,
    max_events: Annotated[int | None, Query(ge=1)] = None,
) -> StreamingResponse:
    """Streams active learners and events per minute as server-sent events (admins)."""
    stream = reports.live_stream(database=kit.db, ctx=ctx, max_events=max_events, disconnected=request.is_disconnected)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
