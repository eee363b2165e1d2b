"""A saga cut short by a crash is finished, or compensated, by the next instance's recovery loop."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.enrollments.models import Enrollment, EnrollmentSagaRecord
from services.kit.time import utcnow
from tests.services.enrollments.conftest import ApiFactory, EnrollmentsApi
from tests.services.enrollments.fakes import FakeUpstreams

pytestmark = pytest.mark.integration
RECOVERY = {"saga_recovery_interval_seconds": 0.05, "saga_stuck_after_seconds": 0.3}


async def _persist(api: EnrollmentsApi, *rows: Any) -> None:
    async with api.app.state.kit.db.session_scope() as db:
        for row in rows:
            db.add(row)
            await db.flush()


def _stuck_saga(user_id: uuid.UUID, course_id: uuid.UUID, state: str, step: str, **extra: Any) -> EnrollmentSagaRecord:
    saga_id, long_ago = uuid.uuid4(), utcnow() - timedelta(hours=1)
    fields: dict[str, Any] = {
        "id": saga_id,
        "enrollment_id": uuid.uuid4(),
        "user_id": user_id,
        "course_id": course_id,
        "state": state,
        "step": step,
        "course_title": "Human Physiology for NEET",
        "amount_paise": 1_499_900,
        "currency": "INR",
        "reservation_id": saga_id,
        "attempts": 0,
        "paid_after_cancel": False,
        "created_at": long_ago,
        "updated_at": long_ago,
    }
    return EnrollmentSagaRecord(**{**fields, **extra})


def _hold_seat(fakes: FakeUpstreams, course_id: uuid.UUID, saga: EnrollmentSagaRecord) -> None:
    """What the courses service holds after a reserve that went through before the crash."""
    fakes.courses[str(course_id)]["seats_taken"] += 1
    fakes.reservations[str(saga.id)] = {"course_id": str(course_id), "student_id": str(saga.user_id), "status": "held"}


async def _until(api: EnrollmentsApi, enrollment_id: uuid.UUID, *states: str) -> dict[str, Any]:
    for _ in range(100):
        status = await api.status(str(enrollment_id))
        if status["saga"]["state"] in states:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"saga still {status['saga']['state']}/{status['saga']['step']}")


async def test_a_saga_stuck_reserving_a_seat_is_driven_to_its_order(make_api: ApiFactory) -> None:
    async with make_api() as first:
        fakes = first.fakes
        course_id, user_id = fakes.add_course(capacity=2), fakes.add_user()
        saga = _stuck_saga(user_id, course_id, "reserving_seat", "reserve_seat")
        _hold_seat(fakes, course_id, saga)  # the reserve reached courses; its reply was lost in the crash
        await _persist(first, saga)

    async with make_api(fakes, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "awaiting_payment")

        assert status["status"] == "pending_payment"
        assert status["order"]["order_id"] == status["saga"]["order_id"], "the student can pay it from here"
        assert fakes.names() == ["reserve_seat", "create_order"]
        assert fakes.calls[0].body == {"reservation_id": str(saga.id), "student_id": str(user_id)}
        assert fakes.calls[1].idempotency_key == str(saga.id)
        assert fakes.seats_taken(course_id) == 1, "repeating the reserve took no second seat"
        assert status["saga"]["attempts"] >= 1
        assert [e.type for e in await second.outbox()] == ["enrollment.created"]
        order_id = fakes.order_keys[str(saga.id)]

        await second.deliver(fakes.payment_succeeded(order_id))
        assert (await second.status(str(saga.enrollment_id)))["status"] == "confirmed"


async def test_a_saga_stuck_creating_its_order_gets_the_order_already_made(make_api: ApiFactory) -> None:
    async with make_api() as first:
        fakes = first.fakes
        course_id, user_id = fakes.add_course(), fakes.add_user()
        saga = _stuck_saga(user_id, course_id, "creating_order", "create_order")
        _hold_seat(fakes, course_id, saga)
        enrollment = Enrollment(
            id=saga.enrollment_id,
            user_id=user_id,
            course_id=course_id,
            saga_id=saga.id,
            course_title="Human Physiology for NEET",
            status="pending_payment",
            amount_paise=1_499_900,
            currency="INR",
        )
        await _persist(first, saga, enrollment)
        # Payments created the order just before the crash; its reply never arrived.
        made = str(uuid.uuid4())
        fakes.order_keys[str(saga.id)] = made
        fakes.orders[made] = {
            "order_id": made,
            "status": "created",
            "user_id": str(user_id),
            "enrollment_id": str(saga.enrollment_id),
            "course_id": str(course_id),
            "amount_paise": 1_499_900,
            "currency": "INR",
        }

    async with make_api(fakes, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "awaiting_payment")

    assert fakes.names() == ["create_order"]
    assert status["saga"]["order_id"] == made
    assert len(fakes.orders) == 1


async def test_a_request_cut_off_mid_saga_is_finished_after_a_restart(make_api: ApiFactory) -> None:
    # The hung call must not time out first (5 s by default; a busy machine has stalled that long):
    # the request is cut off while payments is still being called, as a crash would leave it.
    async with make_api(call_timeout_seconds=120) as first:
        fakes = first.fakes
        course_id = fakes.add_course(capacity=1)
        _, headers = first.student()
        fakes.hang("create_order")
        request = asyncio.create_task(first.enroll(headers, course_id))
        while "create_order" not in fakes.names():
            await asyncio.sleep(0.01)
        request.cancel()  # the process dies while payments is being called
        await asyncio.gather(request, return_exceptions=True)
        (saga,) = await first.sagas()
        # The order was asked for alongside the seat: neither is recorded until both have answered.
        assert saga.state == "reserving_seat"
    fakes.heal()

    async with make_api(fakes, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "awaiting_payment")

    assert status["status"] == "pending_payment"
    # The seat asked for again under the same reservation id is the one seat held; one order.
    assert fakes.seats_taken(course_id) == 1 and fakes.held(course_id) == [str(saga.id)]
    assert list(fakes.order_keys) == [str(saga.id)]
    assert [s["step"] for s in status["saga"]["steps"]][-3:] == ["reserve_seat", "create_enrollment", "create_order"]


async def test_a_compensation_cut_short_is_finished(make_api: ApiFactory) -> None:
    async with make_api() as first:
        fakes = first.fakes
        course_id, user_id = fakes.add_course(capacity=1), fakes.add_user()
        saga = _stuck_saga(user_id, course_id, "compensating", "release_seat", cancel_reason="courses_unavailable")
        _hold_seat(fakes, course_id, saga)
        await _persist(first, saga)

    async with make_api(fakes, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "compensated")

    assert status["status"] == "not_created"
    assert fakes.names() == ["release_seat"]
    assert fakes.seats_taken(course_id) == 0


async def test_a_saga_whose_upstream_stays_down_is_compensated_after_its_attempts(make_api: ApiFactory) -> None:
    async with make_api() as first:
        fakes = first.fakes
        course_id, user_id = fakes.add_course(), fakes.add_user()
        saga = _stuck_saga(user_id, course_id, "reserving_seat", "reserve_seat")
        await _persist(first, saga)
    fakes.fail("reserve_seat", 503)

    async with make_api(fakes, saga_max_attempts=2, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "compensated")

    assert fakes.names() == ["reserve_seat", "reserve_seat", "release_seat"]
    assert status["saga"]["cancel_reason"] == "gave_up"
    assert fakes.seats_taken(course_id) == 0


async def test_a_fresh_saga_is_left_to_the_process_driving_it(make_api: ApiFactory) -> None:
    async with make_api(**RECOVERY) as api:
        fakes = api.fakes
        course_id = fakes.add_course()
        _, headers = api.student()
        fakes.hang("create_order")
        request = asyncio.create_task(api.enroll(headers, course_id))
        for _ in range(200):  # a busy host may take a while to get there
            if "create_order" in fakes.names():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)  # longer than "stuck": but this process is driving it
        assert fakes.names().count("create_order") == 1
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)


async def test_a_saga_interrupted_before_holding_anything_is_dropped(make_api: ApiFactory) -> None:
    async with make_api() as first:
        fakes = first.fakes
        course_id, user_id = fakes.add_course(), fakes.add_user()
        saga = _stuck_saga(user_id, course_id, "checking_course", "check_course", reservation_id=None)
        await _persist(first, saga)

    async with make_api(fakes, **RECOVERY) as second:
        status = await _until(second, saga.enrollment_id, "compensated")
        retry = await second.enroll(second.bearer(user_id), course_id)

    assert status["saga"]["cancel_reason"] == "interrupted"
    assert retry.status_code == 201, "the student's retry starts afresh"
    assert fakes.names() == ["get_user", "get_course", "reserve_seat", "create_order"]
