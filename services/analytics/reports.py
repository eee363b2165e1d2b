"""What the aggregates tell: a learner's dashboard, performance and engagement reports, the live view."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, timedelta

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import report_repository
from services.analytics.models import BUCKETS, NO_COURSE, NO_TOPIC
from services.analytics.schemas import (
    Cohort,
    DailyActive,
    Dashboard,
    DayActivity,
    DayScore,
    Engagement,
    LiveSnapshot,
    PerformanceReport,
    PerformanceRow,
    Rank,
    ScoreBucket,
    TopicPerformance,
)
from services.analytics.service import AnalyticsContext
from services.kit.auth import Identity
from services.kit.db import Database
from services.kit.errors import InvalidInput
from services.kit.time import utcnow

DASHBOARD_DAYS = 1000


def streaks(days: Sequence[date], today: date) -> tuple[int, int]:
    """The current streak (alive until a whole day is missed) and the longest, from active days newest first."""
    current = longest = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and previous - day == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    if days and today - days[0] <= timedelta(days=1):
        current = 1
        for newer, older in zip(days, days[1:], strict=False):
            if newer - older != timedelta(days=1):
                break
            current += 1
    return current, longest


def _ratio(part: float | None, whole: float | None, cap: float | None = None) -> float | None:
    if not whole:
        return None
    value = float(part or 0) / float(whole)
    return round(min(value, cap) if cap is not None else value, 4)


def _topic_row(row: RowMapping) -> TopicPerformance:
    return TopicPerformance(
        course_id=None if row["course_id"] == NO_COURSE else row["course_id"],
        topic=row["topic"] or None,
        attempts=row["attempts"],
        average_percentage=_ratio(row["score_sum"], row["attempts"]),
        best_percentage=row["best_percentage"],
        questions_answered=row["questions_answered"],
        questions_correct=row["questions_correct"],
        lessons_completed=row["lessons_completed"],
        completed=bool(row["completed"]),
    )


async def dashboard(*, db: AsyncSession, identity: Identity, user_id: uuid.UUID) -> Dashboard:
    """Gets a learner's progress: lessons, time, scores over time, streak and rank (own, or admins)."""
    identity.require_self_or_admin(user_id)
    totals = await report_repository.activity_totals(db=db, user_id=user_id)
    days = await report_repository.activity_days(db=db, user_id=user_id, limit=DASHBOARD_DAYS)
    learner = await report_repository.learner(db=db, user_id=user_id)
    current, longest = streaks([d["day"] for d in days], utcnow().date())
    average = learner["average_percentage"] if learner is not None else None
    rank = None
    if average is not None:
        position, learners = await report_repository.rank(db=db, average=average)
        rank = Rank(position=position, learners=learners)
    scored = [d for d in reversed(days) if d["assessments"]]
    return Dashboard(
        user_id=user_id,
        lessons_completed=int(totals["lessons_completed"]),
        time_spent_seconds=int(totals["time_spent_seconds"]),
        events=int(totals["events"]),
        active_days=int(totals["active_days"]),
        current_streak_days=current,
        longest_streak_days=longest,
        assessments=int(learner["assessments"]) if learner is not None else 0,
        average_percentage=round(average, 2) if average is not None else None,
        rank=rank,
        scores_over_time=[
            DayScore(
                day=d["day"],
                assessments=d["assessments"],
                average_percentage=round(d["score_sum"] / d["assessments"], 2),
            )
            for d in scored
        ],
        recent_days=[
            DayActivity(
                day=d["day"],
                events=d["events"],
                lessons_completed=d["lessons_completed"],
                time_spent_seconds=d["time_spent_seconds"],
            )
            for d in days[:30]
        ],
        performance=[_topic_row(r) for r in await report_repository.learner_performance(db=db, user_id=user_id)],
    )


def _performance_row(row: RowMapping) -> PerformanceRow:
    buckets = [
        ScoreBucket(from_percent=edge, to_percent=edge + 10, count=int(row[name] or 0))
        for edge, name in zip(range(0, 100, 10), BUCKETS, strict=True)
    ]
    return PerformanceRow(
        course_id=None if row["course_id"] == NO_COURSE else row["course_id"],
        topic=None if row["topic"] == NO_TOPIC else row["topic"],
        attempts=int(row["attempts"] or 0),
        average_percentage=_ratio(row["score_sum"], row["attempts"]),
        score_distribution=buckets,
        enrollments=int(row["enrollments"] or 0),
        completions=int(row["completions"] or 0),
        completion_rate=_ratio(row["completions"], row["enrollments"], cap=1.0),
        questions_answered=int(row["questions_answered"] or 0),
        accuracy=_ratio(row["questions_correct"], row["questions_answered"]),
        active_learner_days=int(row["active_learners"] or 0),
    )


async def performance_report(*, db: AsyncSession, since: date | None, until: date | None) -> PerformanceReport:
    """Reports scores, completion and practice per course and topic over a period (30 days by default)."""
    until = until or utcnow().date()
    since = since or until - timedelta(days=29)
    if since > until:
        raise InvalidInput("since is after until", errors=[{"field": "since", "message": "after until"}])
    rows = await report_repository.performance_by_course_and_topic(db=db, since=since, until=until)
    return PerformanceReport(since=since, until=until, rows=[_performance_row(r) for r in rows])


async def engagement(*, db: AsyncSession, days: int, weeks: int) -> Engagement:
    """Reports daily, weekly and monthly active learners and week-by-week retention of recent cohorts."""
    today = utcnow().date()
    this_week = today - timedelta(days=today.weekday())
    first_week = this_week - timedelta(weeks=weeks - 1)
    sizes = await report_repository.cohort_sizes(db=db, since=first_week)
    active = {
        (r["cohort_week"], r["week"]): r["active"]
        for r in await report_repository.cohort_activity(db=db, since=first_week)
    }
    cohorts = [
        Cohort(
            week=s["cohort_week"],
            learners=s["learners"],
            retention=[
                round(active.get((s["cohort_week"], s["cohort_week"] + timedelta(weeks=k)), 0) / s["learners"], 4)
                for k in range((this_week - s["cohort_week"]).days // 7 + 1)
            ],
        )
        for s in sizes
    ]
    daily = await report_repository.daily_active(db=db, since=today - timedelta(days=days - 1))
    return Engagement(
        as_of=today,
        daily_active=await report_repository.active_learners_since(db=db, since=today),
        weekly_active=await report_repository.active_learners_since(db=db, since=today - timedelta(days=6)),
        monthly_active=await report_repository.active_learners_since(db=db, since=today - timedelta(days=29)),
        daily=[DailyActive(day=r["day"], active_learners=r["active_learners"]) for r in daily],
        cohorts=cohorts,
    )


async def live_snapshot(*, db: AsyncSession, ctx: AnalyticsContext) -> LiveSnapshot:
    """Learners seen in the last few minutes and events over the last minute."""
    now = utcnow()
    window = ctx.settings.live_window_seconds
    active = await report_repository.learners_seen_since(db=db, since=now - timedelta(seconds=window))
    return LiveSnapshot(
        at=now, active_learners=active, window_seconds=window, events_per_minute=await ctx.rate.per_minute()
    )


async def live_stream(
    *, database: Database, ctx: AnalyticsContext, max_events: int | None, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Server-sent events: a ``live`` snapshot every few seconds until the client goes (or max_events)."""
    sent = 0
    yield f"retry: {int(ctx.settings.live_interval_seconds * 1000)}\n\n"
    while not await disconnected():
        # A short transaction per frame: a stream may stay open for hours.
        async with database.session_scope() as db:
            snapshot = await live_snapshot(db=db, ctx=ctx)
        yield f"event: live\ndata: {snapshot.model_dump_json()}\n\n"
        sent += 1
        if max_events is not None and sent >= max_events:
            return
        await asyncio.sleep(ctx.settings.live_interval_seconds)
