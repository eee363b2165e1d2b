"""Events from the other services, folded into the aggregates exactly once (the kit's inbox).

Each handler also keeps the event as a raw analytics event (without personal data), typed with
its dotted name so that the aggregator, which folds only dotless client types, skips it.

The events of one consumer transaction are folded: their raw rows and their additions to the
aggregates gather in the transaction's ``Fold`` and are written once, just before it commits (one
COPY, one upsert per aggregate row), instead of once per event: a test's two events (submitted,
then scored) add to the same learner's row and the same day's. A handler that reads an aggregate
first writes what the events before it gathered, so that it reads them counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import aggregate_repository, people, repository
from services.analytics.deltas import Deltas
from services.analytics.models import NO_COURSE, NO_TOPIC
from services.analytics.partitions import month_of, retention_start
from services.analytics.service import AnalyticsContext
from services.analytics.telemetry import count_broker_event_on_commit
from services.contracts import events as contracts
from services.kit.events import Event
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork

Handler = Callable[[Event, AsyncSession], Awaitable[None]]
_NOT_KEPT = ("user_id", "course_id", "lesson_id", "email", "full_name")
_FOLD = "cerebrum.analytics.fold"


def _at(moment: datetime | None, event: Event) -> datetime:
    return as_utc(moment or event.occurred_at).astimezone(UTC)


class Fold:
    """A consumer transaction's raw events and aggregate additions, written once just before it commits."""

    def __init__(self, db: AsyncSession, ctx: AnalyticsContext) -> None:
        self.db = db
        self.ctx = ctx
        self.uow = UnitOfWork.of(db)
        self.transaction = self.uow.ended
        self.deltas = Deltas()
        self.rows: list[repository.Row] = []

    @classmethod
    def of(cls, db: AsyncSession, ctx: AnalyticsContext) -> Fold:
        """The fold of the session's transaction, begun (and its write set for the commit) on first use."""
        fold = db.info.get(_FOLD)
        if not isinstance(fold, Fold) or fold.uow is not UnitOfWork.of(db) or fold.transaction != fold.uow.ended:
            fold = db.info[_FOLD] = cls(db, ctx)
            fold.uow.before_commit(fold.write)
        return fold

    async def write(self) -> None:
        """Writes what the events so far gathered: their raw rows in one insert, their deltas in one upsert each."""
        if not self.rows and self.deltas.empty:
            return
        rows, self.rows = self.rows, []
        deltas, self.deltas = self.deltas, Deltas()
        service = self.ctx.settings.service_name
        if rows:
            await self.ctx.partitions.ensure({month_of(row[1]) for row in rows})
            # Many events share one transaction: no savepoint for the COPY (see insert_events).
            stored = await repository.insert_events(db=self.db, rows=rows, copy_first=False)
            for outcome, count in (("stored", stored), ("duplicate", len(rows) - stored)):
                for _ in range(count):
                    count_broker_event_on_commit(self.db, service, outcome)
        await aggregate_repository.apply_deltas(db=self.db, deltas=deltas)


def build_handlers(ctx: AnalyticsContext) -> dict[str, Handler]:
    """The handler of every event type the service consumes."""

    def keep(
        db: AsyncSession, event: Event, *, user_id: uuid.UUID, at: datetime, course_id: uuid.UUID | None = None
    ) -> Deltas:
        """Gathers the event among the raw analytics events (unless it is past retention); returns the
        transaction's deltas for the handler to add the event's changes to."""
        fold = Fold.of(db, ctx)
        if at < retention_start(utcnow(), ctx.settings.retention_months):
            count_broker_event_on_commit(db, ctx.settings.service_name, "expired")
            return fold.deltas
        properties = {k: v for k, v in event.data.items() if k not in _NOT_KEPT}
        blob = orjson.dumps(properties)
        if len(blob) > ctx.settings.max_properties_bytes:
            blob = b"{}"
        lesson = event.data.get("lesson_id")
        fold.rows.append(
            (
                str(event.id),
                at,
                str(user_id),
                event.type,
                str(course_id) if course_id else None,
                str(lesson) if lesson else None,
                blob.decode(),
            )
        )
        return fold.deltas

    async def user_registered(event: Event, db: AsyncSession) -> None:
        p = contracts.UserRegistered.model_validate(event.data)
        at = _at(None, event)
        deltas = keep(db, event, user_id=p.user_id, at=at)
        deltas.learner(p.user_id, at)["registered_at"] = at
        deltas.seen(p.user_id, at)

    async def enrollment_created(event: Event, db: AsyncSession) -> None:
        p = contracts.EnrollmentCreated.model_validate(event.data)
        at = _at(None, event)
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        deltas.report(p.course_id, NO_TOPIC, day)["enrollments_started"] += 1

    async def enrollment_confirmed(event: Event, db: AsyncSession) -> None:
        p = contracts.EnrollmentConfirmed.model_validate(event.data)
        at = _at(p.confirmed_at, event)
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        deltas.report(p.course_id, NO_TOPIC, day)["enrollments"] += 1
        deltas.performance_of(p.user_id, p.course_id, NO_TOPIC, at)

    async def progress_updated(event: Event, db: AsyncSession) -> None:
        p = contracts.ProgressUpdated.model_validate(event.data)
        at = _at(None, event)
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        current = await aggregate_repository.performance_row(db=db, user_id=p.user_id, course_id=p.course_id)
        # The event carries the enrolment's running total: count only the lessons new since the last one.
        # The row as written so far is the stored one raised by the batch's events before this one
        # (the upsert keeps the higher count), so they need not be written before the read.
        pending = deltas.performance.get((p.user_id, p.course_id, NO_TOPIC))
        done_before = max(
            int(current["lessons_completed"]) if current else 0, pending["lessons_completed"] if pending else 0
        )
        newly_done = max(p.completed_lessons - done_before, 0)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        deltas.activity(p.user_id, at)["lessons_completed"] += newly_done
        deltas.report(p.course_id, NO_TOPIC, day)["lessons_completed"] += newly_done
        # Lesson time counts once: each event carries what its update added to the lesson's total.
        seconds = max(p.time_added_seconds, 0)
        deltas.activity(p.user_id, at)["time_spent_seconds"] += seconds
        deltas.report(p.course_id, NO_TOPIC, day)["time_spent_seconds"] += seconds
        perf = deltas.performance_of(p.user_id, p.course_id, NO_TOPIC, at)
        # Both only rise, as the upsert merges them: a late event of fewer lessons lowers neither.
        perf["lessons_completed"] = max(perf["lessons_completed"], p.completed_lessons)
        perf["progress_percent"] = max(perf["progress_percent"] or 0.0, p.percent)

    async def enrollment_completed(event: Event, db: AsyncSession) -> None:
        p = contracts.EnrollmentCompleted.model_validate(event.data)
        at = _at(p.completed_at, event)
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        deltas.report(p.course_id, NO_TOPIC, day)["completions"] += 1
        perf = deltas.performance_of(p.user_id, p.course_id, NO_TOPIC, at)
        perf["completed"], perf["progress_percent"] = True, 100.0

    async def enrollment_reopened(event: Event, db: AsyncSession) -> None:
        p = contracts.EnrollmentReopened.model_validate(event.data)
        at = _at(None, event)
        await Fold.of(db, ctx).write()  # the events before this one, counted before the read
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        current = await aggregate_repository.performance_row(db=db, user_id=p.user_id, course_id=p.course_id)
        # Lessons counted as done and no longer done come off, so finishing them again counts once.
        undone = max((int(current["lessons_completed"]) if current else 0) - p.completed_lessons, 0)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        deltas.activity(p.user_id, at)["lessons_completed"] -= undone
        report = deltas.report(p.course_id, NO_TOPIC, day)
        report["lessons_completed"] -= undone
        report["completions"] -= 1
        await Fold.of(db, ctx).write()  # its own additions before the row is rewritten
        percent = round(100 * p.completed_lessons / p.total_lessons, 2) if p.total_lessons else 0.0
        await aggregate_repository.reopen_course(
            db=db, user_id=p.user_id, course_id=p.course_id, lessons_completed=p.completed_lessons, percent=percent
        )

    async def assessment_submitted(event: Event, db: AsyncSession) -> None:
        p = contracts.AssessmentSubmitted.model_validate(event.data)
        at = _at(p.submitted_at, event)
        deltas = keep(db, event, user_id=p.user_id, at=at)
        day = deltas.seen(p.user_id, at, topic=p.topic)
        seconds = max(p.duration_seconds, 0)
        deltas.activity(p.user_id, at)["time_spent_seconds"] += seconds
        for topic in (NO_TOPIC, p.topic):
            deltas.report(NO_COURSE, topic, day)["time_spent_seconds"] += seconds

    async def assessment_completed(event: Event, db: AsyncSession) -> None:
        p = contracts.AssessmentCompleted.model_validate(event.data)
        at = _at(p.completed_at, event)
        deltas = keep(db, event, user_id=p.user_id, at=at)
        deltas.seen(p.user_id, at, topic=p.topic)
        deltas.score(p.user_id, at, topic=p.topic, percentage=p.percentage)
        if p.question_count is not None:
            deltas.answers(p.user_id, at, topic=p.topic, answered=p.question_count, correct=p.correct_count)

    async def payment_succeeded(event: Event, db: AsyncSession) -> None:
        p = contracts.PaymentSucceeded.model_validate(event.data)
        at = _at(None, event)
        deltas = keep(db, event, user_id=p.user_id, at=at, course_id=p.course_id)
        day = deltas.seen(p.user_id, at, course_id=p.course_id)
        report: dict[str, Any] = deltas.report(p.course_id, NO_TOPIC, day)
        report["payments"] += 1
        report["revenue_paise"] += p.amount_paise

    async def user_deleted(event: Event, db: AsyncSession) -> None:
        await Fold.of(db, ctx).write()  # the events before the deletion, kept before it pseudonymises
        await people.on_user_deleted(event, db)

    return {
        "user.registered": user_registered,
        "enrollment.created": enrollment_created,
        "enrollment.confirmed": enrollment_confirmed,
        "enrollment.progress_updated": progress_updated,
        "enrollment.completed": enrollment_completed,
        "enrollment.reopened": enrollment_reopened,
        "assessment.submitted": assessment_submitted,
        "assessment.completed": assessment_completed,
        "payment.succeeded": payment_succeeded,
        "user.deleted": user_deleted,
    }
