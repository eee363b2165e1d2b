"""The enrolment API: progress and completion, cancelling, who may see what, and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from services.enrollments.models import CourseCompletion
from tests.services.enrollments.conftest import PROBLEM, EnrollmentsApi

pytestmark = pytest.mark.integration


async def _confirmed(api: EnrollmentsApi, *, lessons: int = 3) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    course_id = api.fakes.add_course(lessons=lessons)
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.pay(started)
    lesson_ids = [lesson["id"] for lesson in api.fakes.courses[str(course_id)]["lessons"]]
    return started, headers, lesson_ids


async def _progress(api: EnrollmentsApi, enrollment_id: str, headers: dict[str, str], **body: Any) -> Any:
    return await api.client.put(f"/enrollments/{enrollment_id}/progress", json=body, headers=headers)


async def test_progress_to_100_percent_records_one_completion(api: EnrollmentsApi) -> None:
    started, headers, lessons = await _confirmed(api)
    enrollment_id = started["enrollment_id"]

    replies = [
        await _progress(api, enrollment_id, headers, lesson_id=lesson, completed=True, time_spent_seconds=600)
        for lesson in lessons
    ]

    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json()["progress_percent"] for r in replies] == [33.33, 66.67, 100.0]
    assert [r.json()["course_completed"] for r in replies] == [False, False, True]
    again = await _progress(api, enrollment_id, headers, lesson_id=lessons[-1], completed=True, time_spent_seconds=600)
    assert again.status_code == 200 and again.json()["course_completed"] is True
    completed = await api.outbox("enrollment.completed")
    assert len(completed) == 1 and completed[0].data["enrollment_id"] == enrollment_id
    assert completed[0].data["course_title"] == "Human Physiology for NEET", "its message names the course"
    updates = await api.outbox("enrollment.progress_updated")
    assert [e.data["percent"] for e in updates] == [33.33, 66.67, 100.0], "a repeated update is no news"
    async with api.app.state.kit.db.session_scope() as db:
        rows = (await db.execute(select(CourseCompletion))).scalars().all()
    assert len(rows) == 1 and rows[0].total_time_seconds == 1800
    status = await api.status(enrollment_id, headers)
    assert (status["progress_percent"], status["completed_lessons"], status["total_lessons"]) == (100.0, 3, 3)
    assert status["completed_at"] is not None
    listed = await api.client.get(f"/enrollments/student/{status['user_id']}", headers=headers)
    assert [(e["status"], e["progress_percent"]) for e in listed.json()["items"]] == [("confirmed", 100.0)]
    assert api.fakes.names().count("get_course") == 1, "the saga's read of the lessons serves every update"


async def test_a_lesson_added_after_enrolling_counts_once_courses_is_asked_again(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(lessons=2)
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.pay(started)
    enrollment_id, lessons = started["enrollment_id"], api.fakes.courses[str(course_id)]["lessons"]
    first = await _progress(api, enrollment_id, headers, lesson_id=lessons[0]["id"], completed=True)
    assert first.json()["total_lessons"] == 2 and api.fakes.names().count("get_course") == 1
    added = str(uuid.uuid4())
    lessons.append({"id": added, "position": 3})

    reply = await _progress(api, enrollment_id, headers, lesson_id=added, completed=True)

    assert reply.status_code == 200, reply.text
    assert (reply.json()["completed_lessons"], reply.json()["total_lessons"]) == (2, 3)
    assert reply.json()["course_completed"] is False
    assert api.fakes.names().count("get_course") == 2, "a lesson new to the enrolment is looked up"


async def test_progress_needs_a_confirmed_enrolment_and_a_lesson_of_its_course(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    lesson = api.fakes.courses[str(course_id)]["lessons"][0]["id"]

    pending = await _progress(api, started["enrollment_id"], headers, lesson_id=lesson, completed=True)
    assert pending.status_code == 409 and pending.json()["type"].endswith("enrollment-not-confirmed")

    await api.pay(started)
    stranger = await _progress(api, started["enrollment_id"], headers, lesson_id=str(uuid.uuid4()), completed=True)
    assert stranger.status_code == 422 and stranger.json()["errors"][0]["field"] == "lesson_id"
    assert await api.outbox("enrollment.progress_updated") == []


async def test_cancelling_a_pending_enrolment_runs_the_compensations(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(capacity=1)
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    api.fakes.calls.clear()

    response = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled" and response.json()["saga_state"] == "compensated"
    assert api.fakes.names() == ["cancel_order", "release_seat"]
    assert api.fakes.orders[started["order"]["order_id"]]["status"] == "cancelled"
    assert api.fakes.seats_taken(course_id) == 0
    assert [e.data["reason"] for e in await api.outbox("enrollment.cancelled")] == ["cancelled_by_student"]
    again = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)
    assert again.status_code == 200 and api.fakes.names() == ["cancel_order", "release_seat"]


async def test_cancelling_a_confirmed_enrolment_refunds_it_and_releases_its_seat(api: EnrollmentsApi) -> None:
    started, headers, _ = await _confirmed(api)
    api.fakes.calls.clear()

    response = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=api.admin)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["saga_state"]) == ("cancelled", "cancelled")
    assert api.fakes.names() == ["refund_order", "release_seat"]
    assert [e.data["reason"] for e in await api.outbox("enrollment.cancelled")] == ["cancelled_by_admin"]


async def test_cancelling_an_order_paid_meanwhile_is_409_and_the_payment_confirms(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    paid = api.fakes.payment_succeeded(started["order"]["order_id"])  # paid; the event is still on its way

    response = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)

    assert response.status_code == 409 and response.json()["type"].endswith("already-paid")
    assert (await api.status(started["enrollment_id"]))["saga"]["state"] == "awaiting_payment"
    await api.deliver(paid)
    assert (await api.status(started["enrollment_id"]))["status"] == "confirmed"
    assert api.fakes.seats_taken(course_id) == 1


async def test_a_student_cannot_read_or_change_anothers_enrolments(api: EnrollmentsApi) -> None:
    started, owner, lessons = await _confirmed(api)
    enrollment_id = started["enrollment_id"]
    owner_id = (await api.status(enrollment_id))["user_id"]
    _, other = api.student()

    assert (await api.client.get(f"/enrollments/{enrollment_id}/status", headers=other)).status_code == 403
    assert (await api.client.get(f"/enrollments/student/{owner_id}", headers=other)).status_code == 403
    assert (await api.client.delete(f"/enrollments/{enrollment_id}", headers=other)).status_code == 403
    changed = await _progress(api, enrollment_id, other, lesson_id=lessons[0], completed=True)
    assert changed.status_code == 403 and changed.headers["content-type"] == PROBLEM
    assert (await api.client.get(f"/enrollments/student/{owner_id}", headers=api.admin)).status_code == 200
    assert (await api.status(enrollment_id, owner))["status"] == "confirmed"
    assert (await api.client.get(f"/enrollments/{uuid.uuid4()}/status", headers=owner)).status_code == 404


async def test_anonymous_callers_get_401(api: EnrollmentsApi) -> None:
    some = uuid.uuid4()
    calls = [
        api.client.post("/enrollments", json={"course_id": str(some)}),
        api.client.get(f"/enrollments/student/{some}"),
        api.client.get(f"/enrollments/{some}/status"),
        api.client.put(f"/enrollments/{some}/progress", json={"lesson_id": str(some), "completed": True}),
        api.client.delete(f"/enrollments/{some}"),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM
    assert api.fakes.calls == []


@pytest.mark.parametrize(
    "body",
    [{}, {"course_id": "physiology"}, {"course_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}, []],
)
async def test_a_bad_enrol_body_is_422_and_writes_nothing(api: EnrollmentsApi, body: Any) -> None:
    _, headers = api.student()

    response = await api.client.post("/enrollments", json=body, headers=headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"]
    assert api.fakes.calls == [] and await api.sagas() == [] and await api.outbox() == []


async def test_a_bad_progress_body_is_422(api: EnrollmentsApi) -> None:
    started, headers, lessons = await _confirmed(api)
    for body in (
        {"lesson_id": lessons[0], "completed": True, "time_spent_seconds": -5},
        {"lesson_id": lessons[0]},
        {"lesson_id": "one", "completed": True},
    ):
        response = await _progress(api, started["enrollment_id"], headers, **body)
        assert response.status_code == 422, body
    async with api.app.state.kit.db.session_scope() as db:
        assert (await db.execute(select(func.count()).select_from(CourseCompletion))).scalar_one() == 0
    assert await api.outbox("enrollment.progress_updated") == []


async def test_time_accumulates_and_an_omitted_time_or_a_lower_total_loses_none(api: EnrollmentsApi) -> None:
    started, headers, lessons = await _confirmed(api, lessons=2)
    enrollment_id, lesson = started["enrollment_id"], lessons[0]

    watching = await _progress(api, enrollment_id, headers, lesson_id=lesson, time_spent_seconds=1800)
    assert watching.status_code == 200 and watching.json()["completed"] is False
    done = await _progress(api, enrollment_id, headers, lesson_id=lesson, completed=True)
    assert done.json()["time_spent_seconds"] == 1800, "marking a lesson done keeps its time"
    more = await _progress(api, enrollment_id, headers, lesson_id=lesson, time_spent_seconds=2400)
    assert (more.json()["time_spent_seconds"], more.json()["completed"]) == (2400, True)
    behind = await _progress(api, enrollment_id, headers, lesson_id=lesson, time_spent_seconds=600)
    assert behind.status_code == 409 and behind.headers["content-type"] == PROBLEM
    assert behind.json()["type"].endswith("time-spent-decreased") and behind.json()["recorded_seconds"] == 2400
    again = await _progress(api, enrollment_id, headers, lesson_id=lesson, time_spent_seconds=2400)
    assert again.json()["time_spent_seconds"] == 2400

    updates = await api.outbox("enrollment.progress_updated")
    assert [(e.data["time_spent_seconds"], e.data["time_added_seconds"]) for e in updates] == [
        (1800, 1800),
        (1800, 0),
        (2400, 600),
    ], "a refused or repeated total is no news"


async def test_course_completion_follows_its_lessons_both_ways(api: EnrollmentsApi) -> None:
    started, headers, lessons = await _confirmed(api, lessons=2)
    enrollment_id = started["enrollment_id"]
    for lesson in lessons:
        finished = await _progress(api, enrollment_id, headers, lesson_id=lesson, completed=True)
    assert finished.json()["course_completed"] is True

    undone = await _progress(api, enrollment_id, headers, lesson_id=lessons[1], completed=False)
    assert undone.status_code == 200
    assert (undone.json()["course_completed"], undone.json()["progress_percent"]) == (False, 50.0)
    status = await api.status(enrollment_id, headers)
    assert (status["status"], status["completed_at"], status["progress_percent"]) == ("confirmed", None, 50.0)
    reopened = await api.outbox("enrollment.reopened")
    assert [(e.data["completed_lessons"], e.data["total_lessons"]) for e in reopened] == [(1, 2)]

    redone = await _progress(api, enrollment_id, headers, lesson_id=lessons[1], completed=True)
    assert redone.json()["course_completed"] is True
    assert len(await api.outbox("enrollment.completed")) == 2, "finished again, announced again"
    async with api.app.state.kit.db.session_scope() as db:
        assert (await db.execute(select(func.count()).select_from(CourseCompletion))).scalar_one() == 1
