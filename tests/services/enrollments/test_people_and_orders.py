"""The enrolment's copy of its order follows payments; a deleted account's unpaid enrolments end at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.contracts.events import PaymentOrderCancelled, UserDeleted
from services.kit.events import Event
from tests.services.enrollments.conftest import EnrollmentsApi

pytestmark = pytest.mark.integration
FORWARD = ["get_user", "get_course", "reserve_seat", "create_order"]


def _event(type_: str, data: dict[str, object]) -> Event:
    return Event(id=uuid.uuid4(), type=type_, source="tests", occurred_at=datetime.now(UTC), data=data)


async def test_the_status_shows_the_order_paid_as_soon_as_payments_says_so(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    assert (await api.status(started["enrollment_id"], headers))["order"]["status"] == "created"

    paid = await api.pay(started)

    order = (await api.status(started["enrollment_id"], headers))["order"]
    assert order["status"] == "paid"
    assert order["payment_id"] == paid.data["payment_id"]
    assert order["order_id"] == started["order"]["order_id"]


@pytest.mark.parametrize(("reason", "shown"), [("card_declined", "failed"), ("expired", "expired")])
async def test_the_status_shows_a_failed_or_expired_order(api: EnrollmentsApi, reason: str, shown: str) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.deliver(api.fakes.payment_failed(started["order"]["order_id"], reason))
    assert (await api.status(started["enrollment_id"]))["order"]["status"] == shown


async def test_a_stale_cancellation_does_not_unpay_the_order(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.pay(started)
    order = started["order"]
    cancelled = PaymentOrderCancelled(
        order_id=order["order_id"],
        enrollment_id=started["enrollment_id"],
        user_id=order["user_id"],
        course_id=course_id,
        previous_status="created",
        reason="cancelled",
    )
    await api.deliver(_event("payment.order_cancelled", cancelled.data()))
    assert (await api.status(started["enrollment_id"]))["order"]["status"] == "paid"


async def test_a_deleted_accounts_unpaid_enrolment_is_cancelled_and_its_seat_released_at_once(
    api: EnrollmentsApi,
) -> None:
    course_id, other_course = api.fakes.add_course(capacity=1), api.fakes.add_course()
    user_id, headers = api.student()
    pending = await api.enrolled(headers, course_id)
    confirmed = await api.enrolled(headers, other_course)
    await api.pay(confirmed)
    assert api.fakes.seats_taken(course_id) == 1

    deleted = _event("user.deleted", UserDeleted(user_id=user_id).data())
    await api.deliver(deleted)
    await api.deliver(deleted)  # a redelivery changes nothing

    assert api.fakes.seats_taken(course_id) == 0
    assert api.fakes.orders[pending["order"]["order_id"]]["status"] == "cancelled"
    status = await api.status(pending["enrollment_id"])
    assert (status["status"], status["saga"]["state"]) == ("cancelled", "compensated")
    assert status["saga"]["cancel_reason"] == "account_deleted"
    # A paid enrolment stays: its money is payments' to refund.
    assert (await api.status(confirmed["enrollment_id"]))["status"] == "confirmed"
    cancelled = await api.outbox("enrollment.cancelled")
    assert [(e.data["enrollment_id"], e.data["reason"]) for e in cancelled] == [
        (pending["enrollment_id"], "account_deleted")
    ]
    # The seat is free for another student.
    _, other = api.student()
    assert (await api.enroll(other, course_id)).status_code == 201


async def test_the_status_shows_the_order_refunded_and_a_late_payment_event_does_not_undo_it(
    api: EnrollmentsApi,
) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    paid = await api.pay(started)

    await api.deliver(api.fakes.payment_refunded(started["order"]["order_id"]))
    assert (await api.status(started["enrollment_id"]))["order"]["status"] == "refunded"

    replayed = _event("payment.succeeded", paid.data)  # the same payment, a new event id, arriving late
    await api.deliver(replayed)
    assert (await api.status(started["enrollment_id"]))["order"]["status"] == "refunded"
