"""The enrolment saga: each step, each failure's compensations in reverse, and the payment events."""

from __future__ import annotations

import time
import uuid

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from tests.conftest import LogCapture
from tests.services.enrollments.conftest import PROBLEM, ApiFactory, EnrollmentsApi

pytestmark = pytest.mark.integration
FORWARD = ["get_user", "get_course", "reserve_seat", "create_order"]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "enrollments", **labels}) or 0.0


async def test_happy_path_pending_then_confirmed_once(api: EnrollmentsApi, spans: InMemorySpanExporter) -> None:
    course_id = api.fakes.add_course(capacity=3, price_paise=2_499_900)
    user_id, headers = api.student()
    confirmed_before = _metric("cerebrum_enrollments_total", outcome="confirmed")

    response = await api.enroll(headers, course_id)

    assert response.status_code == 201, response.text
    started = response.json()
    assert started["status"] == "pending_payment"
    order = started["order"]
    assert order["status"] == "created" and order["amount_paise"] == 2_499_900
    assert order["enrollment_id"] == started["enrollment_id"] and order["user_id"] == str(user_id)
    assert api.fakes.names() == FORWARD
    reserve, create = api.fakes.calls[2], api.fakes.calls[3]
    assert reserve.body == {"reservation_id": started["saga_id"], "student_id": str(user_id)}
    assert create.idempotency_key == started["saga_id"]
    assert {c.role for c in api.fakes.calls} == {"service"}
    assert api.fakes.seats_taken(course_id) == 1
    assert [e.type for e in await api.outbox()] == ["enrollment.created"]

    await api.pay(started)

    status = await api.status(started["enrollment_id"], headers)
    assert status["status"] == "confirmed"
    assert status["saga"]["state"] == "confirmed"
    assert [(s["step"], s["outcome"]) for s in status["saga"]["steps"]] == [
        ("validate_user", "ok"),
        ("check_course", "ok"),
        ("reserve_seat", "ok"),
        ("create_enrollment", "ok"),
        ("create_order", "ok"),
        ("confirm", "ok"),
    ]
    confirmed = await api.outbox("enrollment.confirmed")
    assert len(confirmed) == 1
    assert confirmed[0].data["enrollment_id"] == started["enrollment_id"]
    assert confirmed[0].data["course_title"] == "Human Physiology for NEET"
    assert _metric("cerebrum_enrollments_total", outcome="confirmed") == confirmed_before + 1
    assert api.fakes.names() == FORWARD, "confirming calls nobody: communication reads the event"
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert {"saga.validate_user", "saga.check_course", "saga.reserve_seat", "saga.create_order"} <= set(finished)
    # The course, read alongside the user, had answered: its check was recorded in the user's step.
    checked, validated = finished["saga.check_course"], finished["saga.validate_user"]
    assert checked.parent is not None and checked.parent.span_id == validated.context.span_id


async def test_a_redelivered_payment_changes_nothing(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    event = await api.pay(started)

    await api.deliver(event)  # the broker's redelivery: the inbox drops it
    again = api.fakes.payment_succeeded(started["order"]["order_id"])  # the same payment, a new event id
    await api.deliver(again)

    assert len(await api.outbox("enrollment.confirmed")) == 1
    status = await api.status(started["enrollment_id"])
    assert status["saga"]["state"] == "confirmed"
    assert [s["step"] for s in status["saga"]["steps"]].count("confirm") == 1


async def test_user_missing_is_404_and_nothing_to_compensate(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    ghost = uuid.uuid4()

    response = await api.enroll(api.bearer(ghost), course_id)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("user-not-found")
    # The course is read alongside the user (one round trip less); nothing is held.
    assert api.fakes.names() == ["get_user", "get_course"]
    assert await api.enrollments() == []
    (saga,) = await api.sagas()
    assert saga.state == "compensated"


async def test_course_missing_is_404(api: EnrollmentsApi) -> None:
    _, headers = api.student()
    response = await api.enroll(headers, uuid.uuid4())
    assert response.status_code == 404
    assert response.json()["type"].endswith("course-not-found")
    assert api.fakes.names() == ["get_user", "get_course"]


async def test_a_course_closed_for_enrolment_is_409_and_holds_nothing(api: EnrollmentsApi) -> None:
    # The course is read alongside the user and usually answers first; a closed one is still
    # refused by its own step, after the user's, with nothing reserved.
    course_id = api.fakes.add_course(is_active=False)
    _, headers = api.student()

    response = await api.enroll(headers, course_id)

    assert response.status_code == 409
    assert response.json()["type"].endswith("course-not-open")
    assert api.fakes.names() == ["get_user", "get_course"]
    (saga,) = await api.sagas()
    assert saga.state == "compensated" and saga.reservation_id is None
    assert await api.enrollments() == [] and await api.outbox() == []


async def test_no_seats_is_409_and_releases_nothing(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(capacity=0)
    _, headers = api.student()

    response = await api.enroll(headers, course_id)

    assert response.status_code == 409
    assert response.json()["type"].endswith("no-seats-left")
    assert api.fakes.names() == ["get_user", "get_course", "reserve_seat"]
    assert await api.enrollments() == [] and await api.outbox() == []


@pytest.mark.parametrize("status", [503, 500])
async def test_order_creation_failing_compensates_in_reverse(api: EnrollmentsApi, status: int) -> None:
    course_id = api.fakes.add_course(capacity=2)
    _, headers = api.student()
    api.fakes.fail("create_order", status)
    compensated_before = _metric("cerebrum_enrollments_total", outcome="compensated")

    response = await api.enroll(headers, course_id)

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["dependency"] == "payments"
    # No order id came back, so there is no order to cancel: the enrolment, then the seat.
    assert api.fakes.names() == [*FORWARD, "release_seat"]
    assert api.fakes.calls[-1].body == {"reservation_id": api.fakes.calls[2].body["reservation_id"]}  # type: ignore[index]
    assert api.fakes.seats_taken(course_id) == 0 and api.fakes.held(course_id) == []
    (enrollment,) = await api.enrollments()
    assert enrollment.status == "cancelled" and enrollment.cancel_reason == "payments_unavailable"
    assert [e.type for e in await api.outbox()] == ["enrollment.created", "enrollment.cancelled"]
    (saga,) = await api.sagas()
    assert saga.state == "compensated" and saga.last_error and "payments" in saga.last_error
    assert _metric("cerebrum_enrollments_total", outcome="compensated") == compensated_before + 1
    # The student can try again at once: the cancelled enrolment does not count as active.
    api.fakes.heal()
    assert (await api.enroll(headers, course_id)).status_code == 201


async def test_payments_down_opens_its_breaker_and_enrolments_still_compensate(make_api: ApiFactory) -> None:
    async with make_api(breaker_threshold=2) as api:
        course_id = api.fakes.add_course(capacity=5)
        api.fakes.fail("create_order", 503)
        replies = [await api.enroll(api.student()[1], course_id) for _ in range(3)]

        assert [r.status_code for r in replies] == [503, 503, 503]
        assert {r.json()["dependency"] for r in replies} == {"payments"}
        assert "circuit open" in replies[-1].json()["detail"]
        assert api.fakes.names().count("create_order") == 2, "the open breaker spared payments the third call"
        assert api.fakes.names().count("release_seat") == 3
        assert api.fakes.seats_taken(course_id) == 0
        assert {s.state for s in await api.sagas()} == {"compensated"}


async def test_payments_refusing_the_order_is_409_after_compensating(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    api.fakes.fail("create_order", 422)

    response = await api.enroll(headers, course_id)

    assert response.status_code == 409
    assert response.json()["type"].endswith("payment-order-refused")
    assert api.fakes.names() == [*FORWARD, "release_seat"]
    assert api.fakes.seats_taken(course_id) == 0


@pytest.mark.parametrize(("seat", "answer", "released"), [("refused", 409, []), ("hanging", 503, ["release_seat"])])
async def test_the_order_asked_for_alongside_a_seat_not_taken_is_cancelled(
    make_api: ApiFactory, seat: str, answer: int, released: list[str]
) -> None:
    async with make_api(call_timeout_seconds=0.3, call_retries=1) as api:
        course_id = api.fakes.add_course(capacity=5)
        _, headers = api.student()
        if seat == "refused":
            api.fakes.fail("reserve_seat", 409)
        else:
            api.fakes.hang("reserve_seat")

        response = await api.enroll(headers, course_id)

        assert response.status_code == answer, response.text
        # The course had seats left when read: the order was asked for without waiting for the seat.
        asked = ["get_user", "get_course", "reserve_seat", "create_order"]
        assert api.fakes.names() == [*asked, "cancel_order", *released]
        assert [order["status"] for order in api.fakes.orders.values()] == ["cancelled"]
        (saga,) = await api.sagas()
        assert saga.state == "compensated" and saga.order_id is not None
        assert await api.enrollments() == [] and await api.outbox() == []


async def test_courses_down_is_503_naming_it(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    api.fakes.fail("reserve_seat", 503)
    api.fakes.fail("release_seat", 503)

    response = await api.enroll(headers, course_id)

    assert response.status_code == 503
    assert response.json()["dependency"] == "courses"
    assert response.headers["retry-after"] == "5"
    # The reserve may have gone through before the failure: its release is left to the recovery loop.
    (saga,) = await api.sagas()
    assert (saga.state, saga.step, saga.reservation_id) == ("compensating", "release_seat", saga.id)


async def test_an_upstream_hanging_past_the_timeout_is_503_quickly(make_api: ApiFactory) -> None:
    async with make_api(call_timeout_seconds=0.2, call_retries=1) as api:
        course_id = api.fakes.add_course()
        _, headers = api.student()
        api.fakes.hang("get_user")

        started = time.perf_counter()
        response = await api.enroll(headers, course_id)
        elapsed = time.perf_counter() - started

    assert response.status_code == 503
    assert response.json()["dependency"] == "users"
    assert "timed out" in response.json()["detail"]
    assert elapsed < 2.0
    assert [name for name in api.fakes.names() if name != "get_course"] == ["get_user", "get_user"]


@pytest.mark.parametrize("reason", ["card_declined", "expired"])
async def test_a_failed_or_expired_payment_compensates(api: EnrollmentsApi, reason: str) -> None:
    course_id = api.fakes.add_course(capacity=1)
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)

    await api.deliver(api.fakes.payment_failed(started["order"]["order_id"], reason))

    # The order is dead already: no cancel call; the enrolment is cancelled, then the seat released.
    assert api.fakes.names() == [*FORWARD, "release_seat"]
    assert api.fakes.seats_taken(course_id) == 0
    status = await api.status(started["enrollment_id"])
    assert status["status"] == "cancelled"
    assert status["saga"]["state"] == "compensated"
    assert status["saga"]["cancel_reason"] == f"payment_{reason}"
    cancelled = await api.outbox("enrollment.cancelled")
    assert [e.data["reason"] for e in cancelled] == [f"payment_{reason}"]
    # The seat is free for another student.
    _, other = api.student()
    assert (await api.enroll(other, course_id)).status_code == 201


async def test_a_payment_after_compensation_is_recorded_not_confirmed(api: EnrollmentsApi, logs: LogCapture) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.deliver(api.fakes.payment_failed(started["order"]["order_id"], "expired"))

    await api.pay(started)

    status = await api.status(started["enrollment_id"])
    assert status["status"] == "cancelled"
    assert status["saga"]["state"] == "payment_after_cancel"
    assert await api.outbox("enrollment.confirmed") == []
    assert any(line.get("event") == "payment_after_cancel" for line in logs.lines())
