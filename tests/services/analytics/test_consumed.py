"""Events from the other services update the aggregates exactly once, however often delivered."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.contracts import events as contracts
from services.kit.events import Event
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, consumed


def learner_journey(user_id: uuid.UUID, course_id: uuid.UUID) -> list[Event]:
    """Registration, an enrolment worked through to the end, and two scored assessments on two days."""
    now = utcnow()
    yesterday = now - timedelta(days=1)
    enrollment: dict[str, Any] = {"enrollment_id": uuid.uuid4(), "user_id": user_id, "course_id": course_id}

    def progress(done: int) -> Event:
        return consumed(
            "enrollment.progress_updated",
            contracts.ProgressUpdated(
                **enrollment,
                lesson_id=uuid.uuid4(),
                percent=done * 25.0,
                time_spent_seconds=done * 600,
                completed_lessons=done,
                total_lessons=4,
            ),
        )

    def scored(percentage: float, at: datetime) -> list[Event]:
        common: dict[str, Any] = {"attempt_id": uuid.uuid4(), "user_id": user_id, "topic": "genetics"}
        return [
            consumed(
                "assessment.submitted",
                contracts.AssessmentSubmitted(**common, question_count=10, duration_seconds=600, submitted_at=at),
            ),
            consumed(
                "assessment.completed",
                contracts.AssessmentCompleted(
                    **common,
                    result_id=uuid.uuid4(),
                    score=percentage / 10,
                    max_score=10,
                    percentage=percentage,
                    correct_count=int(percentage / 10),
                    completed_at=at,
                ),
            ),
        ]

    return [
        consumed("user.registered", contracts.UserRegistered(user_id=user_id, email="asha@example.com"), at=yesterday),
        *scored(55.0, yesterday),
        consumed(
            "enrollment.created",
            contracts.EnrollmentCreated(**enrollment, saga_id=uuid.uuid4(), amount_paise=1999900),
        ),
        consumed(
            "payment.succeeded",
            contracts.PaymentSucceeded(
                payment_id=uuid.uuid4(),
                order_id=uuid.uuid4(),
                enrollment_id=enrollment["enrollment_id"],
                user_id=user_id,
                course_id=course_id,
                amount_paise=1999900,
            ),
        ),
        consumed(
            "enrollment.confirmed",
            contracts.EnrollmentConfirmed(
                **enrollment, course_title="Genetics", amount_paise=1999900, confirmed_at=now
            ),
        ),
        progress(1),
        progress(3),
        progress(2),  # late and out of order: adds nothing
        progress(4),
        consumed("enrollment.completed", contracts.EnrollmentCompleted(**enrollment, completed_at=now)),
        *scored(95.0, now),
    ]


async def test_consumed_events_reach_the_dashboard_exactly_once(analytics: AnalyticsApi) -> None:
    api = analytics
    course_id = uuid.uuid4()
    journey = learner_journey(api.student_id, course_id)
    await api.deliver(*journey)
    first = await api.dashboard()

    assert first["lessons_completed"] == 4
    assert first["time_spent_seconds"] == 1200
    assert first["assessments"] == 2
    assert first["average_percentage"] == 75.0
    assert [s["average_percentage"] for s in first["scores_over_time"]] == [55.0, 95.0]
    assert first["current_streak_days"] == 2
    assert first["rank"] == {"position": 1, "learners": 1}
    course_row = next(p for p in first["performance"] if p["course_id"] == str(course_id))
    assert course_row["completed"] is True and course_row["lessons_completed"] == 4

    await api.deliver(*journey)  # the broker redelivers everything
    await api.deliver(journey[3], journey[3])  # and one event twice in one batch
    await api.fold()
    assert await api.dashboard() == first


async def test_the_performance_report_comes_from_aggregates_not_raw_events(analytics: AnalyticsApi) -> None:
    api = analytics
    course_id = uuid.uuid4()
    await api.deliver(*learner_journey(api.student_id, course_id))
    await api.deliver(*learner_journey(api.other_id, uuid.uuid4()))
    async with api.app.state.kit.db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE analytics_events"))  # reports must not need them

    assert (await api.client.get("/analytics/reports/performance", headers=api.student)).status_code == 403
    assert (await api.client.get("/analytics/reports/performance")).status_code == 401
    response = await api.client.get("/analytics/reports/performance", headers=api.admin)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    genetics = next(r for r in rows if r["course_id"] is None and r["topic"] == "genetics")
    assert genetics["attempts"] == 4
    assert genetics["average_percentage"] == 75.0
    buckets = {b["from_percent"]: b["count"] for b in genetics["score_distribution"]}
    assert buckets[50] == 2 and buckets[90] == 2 and sum(buckets.values()) == 4
    course = next(r for r in rows if r["course_id"] == str(course_id) and r["topic"] is None)
    assert course["enrollments"] == 1 and course["completions"] == 1 and course["completion_rate"] == 1.0

    other = await api.dashboard(api.other_id)
    assert other["rank"] == {"position": 1, "learners": 2}, "equal averages share first place"


async def test_a_journey_consumed_in_one_transaction_counts_as_one_event_at_a_time(analytics: AnalyticsApi) -> None:
    """A batch's events are folded and written once; the dashboard must not tell the difference."""
    api = analytics
    course_id = uuid.uuid4()
    await api.deliver(*learner_journey(api.student_id, course_id))  # one transaction, one write
    for event in learner_journey(api.other_id, course_id):
        await api.deliver(event)  # a transaction each
    batched, one_by_one = await api.dashboard(), await api.dashboard(api.other_id)
    assert batched["lessons_completed"] == 4 and batched["assessments"] == 2
    assert {k: v for k, v in batched.items() if k != "user_id"} == {
        k: v for k, v in one_by_one.items() if k != "user_id"
    }
    assert await api.stored_events() == 2 * len(learner_journey(api.student_id, course_id))


async def test_a_late_lower_total_last_in_a_batch_leaves_the_course_row_as_one_at_a_time(
    analytics: AnalyticsApi,
) -> None:
    """A student's course row keeps the highest total seen, however the events were batched."""
    api = analytics
    course_id = uuid.uuid4()

    def updates(user_id: uuid.UUID) -> list[Event]:
        enrollment: dict[str, Any] = {"enrollment_id": uuid.uuid4(), "user_id": user_id, "course_id": course_id}
        return [
            consumed(
                "enrollment.progress_updated",
                contracts.ProgressUpdated(
                    **enrollment,
                    lesson_id=uuid.uuid4(),
                    percent=done * 25.0,
                    time_spent_seconds=600,
                    time_added_seconds=600,
                    completed_lessons=done,
                    total_lessons=4,
                ),
            )
            for done in (1, 3, 2)  # the last arrives late: it was sent before the 3
        ]

    await api.deliver(*updates(api.student_id))
    for event in updates(api.other_id):
        await api.deliver(event)

    async with api.app.state.kit.db.engine.begin() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT user_id, lessons_completed, progress_percent FROM performance_metrics"
                    " WHERE course_id = :course"
                ),
                {"course": course_id},
            )
        ).all()
    by_user = {row.user_id: (row.lessons_completed, row.progress_percent) for row in rows}
    assert by_user == {api.student_id: (3, 75.0), api.other_id: (3, 75.0)}
    batched, one_by_one = await api.dashboard(), await api.dashboard(api.other_id)
    assert batched["lessons_completed"] == one_by_one["lessons_completed"] == 3
