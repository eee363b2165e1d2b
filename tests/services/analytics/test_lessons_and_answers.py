"""Lesson time from progress events and answers from assessments reach the dashboard and the reports."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.contracts import events as contracts
from services.kit.events import Event
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, consumed

pytestmark = pytest.mark.integration


def _progress(enrollment: dict[str, Any], lesson: uuid.UUID, *, total: int, added: int, done: int) -> Event:
    payload = contracts.ProgressUpdated(
        **enrollment,
        lesson_id=lesson,
        percent=done * 50.0,
        time_spent_seconds=total,
        time_added_seconds=added,
        completed_lessons=done,
        total_lessons=2,
    )
    return consumed("enrollment.progress_updated", payload)


async def test_lesson_time_and_assessment_answers_are_counted(analytics: AnalyticsApi) -> None:
    api, now = analytics, utcnow()
    course_id = uuid.uuid4()
    enrollment: dict[str, Any] = {"enrollment_id": uuid.uuid4(), "user_id": api.student_id, "course_id": course_id}
    first, second = uuid.uuid4(), uuid.uuid4()
    attempt: dict[str, Any] = {"attempt_id": uuid.uuid4(), "user_id": api.student_id, "topic": "genetics"}
    events = [
        _progress(enrollment, first, total=1800, added=1800, done=0),
        _progress(enrollment, first, total=1800, added=0, done=1),  # marked done, no new time
        _progress(enrollment, second, total=1800, added=1800, done=2),
        consumed("enrollment.completed", contracts.EnrollmentCompleted(**enrollment, completed_at=now)),
        consumed(
            "assessment.submitted",
            contracts.AssessmentSubmitted(**attempt, question_count=5, duration_seconds=420, submitted_at=now),
        ),
        consumed(
            "assessment.completed",
            contracts.AssessmentCompleted(
                **attempt,
                result_id=uuid.uuid4(),
                score=4,
                max_score=5,
                percentage=80.0,
                correct_count=4,
                question_count=5,
                completed_at=now,
            ),
        ),
    ]
    await api.deliver(*events)
    await api.deliver(*events)  # redelivered: counted once

    dashboard = await api.dashboard()
    assert dashboard["time_spent_seconds"] == 3600 + 420, "lesson time and assessment time, each once"
    assert dashboard["lessons_completed"] == 2
    genetics = next(p for p in dashboard["performance"] if p["topic"] == "genetics")
    assert (genetics["questions_answered"], genetics["questions_correct"]) == (5, 4)

    response = await api.client.get("/analytics/reports/performance", headers=api.admin)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    topic = next(r for r in rows if r["course_id"] is None and r["topic"] == "genetics")
    assert (topic["questions_answered"], topic["accuracy"], topic["attempts"]) == (5, 0.8, 1)
    course = next(r for r in rows if r["course_id"] == str(course_id) and r["topic"] is None)
    assert course["completions"] == 1

    reopened = contracts.EnrollmentReopened(**enrollment, completed_lessons=1, total_lessons=2)
    await api.deliver(consumed("enrollment.reopened", reopened))
    dashboard = await api.dashboard()
    row = next(p for p in dashboard["performance"] if p["course_id"] == str(course_id))
    assert (row["completed"], row["lessons_completed"]) == (False, 1)
    assert dashboard["lessons_completed"] == 1 and dashboard["time_spent_seconds"] == 4020
    rows = (await api.client.get("/analytics/reports/performance", headers=api.admin)).json()["rows"]
    course = next(r for r in rows if r["course_id"] == str(course_id) and r["topic"] is None)
    assert course["completions"] == 0
