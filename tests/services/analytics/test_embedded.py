"""The analytics API as `cerebrum up` runs it: SQLite (no partitions) and the Redis stand-in."""

from __future__ import annotations

import uuid
from datetime import timedelta

from services.contracts import events as contracts
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, consumed, learning_event


async def test_ingest_fold_and_dashboard_work_embedded(embedded_analytics: AnalyticsApi) -> None:
    api = embedded_analytics
    now, course_id = utcnow(), str(uuid.uuid4())
    hourly = [day.replace(hour=h) for day in (now, now - timedelta(days=1)) for h in range(now.hour + 1)]
    events = [learning_event(api.student_id, occurred_at=at.isoformat(), course_id=course_id) for at in hourly]
    response = await api.send(events, headers=api.student)
    assert response.status_code == 202, response.text
    assert (await api.send(events, headers=api.student)).json()["duplicates"] == len(events)
    assert await api.stored_events() == len(events)
    assert await api.fold() == len(events)

    completed = contracts.AssessmentCompleted(
        result_id=uuid.uuid4(),
        attempt_id=uuid.uuid4(),
        user_id=api.student_id,
        topic="ecology",
        score=8,
        max_score=10,
        percentage=80.0,
        correct_count=8,
        completed_at=now,
    )
    event = consumed("assessment.completed", completed)
    await api.deliver(event)
    await api.deliver(event)

    dashboard = await api.dashboard()
    assert dashboard["events"] == len(events) + 1
    assert dashboard["time_spent_seconds"] == 30 * len(events)
    assert dashboard["current_streak_days"] == 2
    assert dashboard["assessments"] == 1 and dashboard["average_percentage"] == 80.0
    assert dashboard["rank"] == {"position": 1, "learners": 1}

    report = (await api.client.get("/analytics/reports/performance", headers=api.admin)).json()["rows"]
    ecology = next(r for r in report if r["topic"] == "ecology")
    assert ecology["attempts"] == 1 and ecology["average_percentage"] == 80.0

    engagement = (await api.client.get("/analytics/metrics/engagement", headers=api.admin)).json()
    assert engagement["daily_active"] == 1 and engagement["cohorts"][-1]["learners"] == 1
    course = next(r for r in report if r["course_id"] == course_id and r["topic"] is None)
    assert course["active_learner_days"] == 2, "one learner on two days, however many events"

    old = learning_event(api.student_id, occurred_at=(now - timedelta(days=400)).isoformat())
    assert (await api.send([old])).status_code == 202
    assert await api.ctx.partitions.drop_expired(now + timedelta(days=400)) == []
    assert await api.stored_events() == len(events) + 1, "SQLite deletes rows past retention instead"
