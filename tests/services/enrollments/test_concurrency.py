"""A rush on a small course never oversells it, and a student holds one active enrolment per course."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy.exc import IntegrityError

from services.enrollments.models import Enrollment
from tests.services.enrollments.conftest import EnrollmentsApi

pytestmark = pytest.mark.integration


async def test_50_students_rush_5_seats(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(capacity=5)
    students = [api.student() for _ in range(50)]

    responses = await asyncio.gather(*(api.enroll(headers, course_id) for _, headers in students))

    assert Counter(r.status_code for r in responses) == {201: 5, 409: 45}
    assert {r.json()["type"].rsplit("/", 1)[-1] for r in responses if r.status_code == 409} == {"no-seats-left"}
    started = [r.json() for r in responses if r.status_code == 201]
    pending = await api.enrollments()
    assert sorted(e.status for e in pending) == ["pending_payment"] * 5
    # Every seat taken belongs to a pending enrolment's saga; no refused saga holds or released one.
    assert api.fakes.seats_taken(course_id) == 5
    assert sorted(api.fakes.held(course_id)) == sorted(s["saga_id"] for s in started)
    assert "release_seat" not in api.fakes.names()
    assert len({s["order"]["order_id"] for s in started}) == 5
    _only_these_orders_stand(api, {s["order"]["order_id"] for s in started})

    await api.deliver(*(api.fakes.payment_succeeded(s["order"]["order_id"]) for s in started))

    assert sorted(e.status for e in await api.enrollments()) == ["confirmed"] * 5
    assert len(await api.outbox("enrollment.confirmed")) == 5
    assert api.fakes.seats_taken(course_id) == 5
    states = Counter(s.state for s in await api.sagas())
    assert states == {"confirmed": 5, "compensated": 45}


async def test_a_second_active_enrolment_in_a_course_is_409(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    first = await api.enrolled(headers, course_id)

    again = await api.enroll(headers, course_id)

    assert again.status_code == 409
    assert again.json()["type"].endswith("already-enrolled")
    assert again.json()["enrollment_id"] == first["enrollment_id"]
    await api.pay(first)
    assert (await api.enroll(headers, course_id)).status_code == 409, "a confirmed one counts too"
    assert api.fakes.seats_taken(course_id) == 1


async def test_the_same_student_enrolling_twice_at_once_gets_one(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(capacity=10)
    _, headers = api.student()

    responses = await asyncio.gather(*(api.enroll(headers, course_id) for _ in range(4)))

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 3}
    assert all(r.json()["type"].endswith("already-enrolled") for r in responses if r.status_code == 409)
    assert [e.status for e in await api.enrollments()] == ["pending_payment"]
    # A loser that had reserved a seat before the unique index refused it gave the seat back.
    assert api.fakes.seats_taken(course_id) == 1
    (winner,) = [r.json() for r in responses if r.status_code == 201]
    _only_these_orders_stand(api, {winner["order"]["order_id"]})


def _only_these_orders_stand(api: EnrollmentsApi, kept: set[str]) -> None:
    """Payments agrees with the sagas: an order asked for alongside a seat that was refused is cancelled."""
    assert kept <= set(api.fakes.orders)
    assert {order_id: order["status"] for order_id, order in api.fakes.orders.items() if order_id not in kept} == {
        order_id: "cancelled" for order_id in api.fakes.orders if order_id not in kept
    }


async def test_the_database_allows_one_active_enrolment_per_student_and_course(api: EnrollmentsApi) -> None:
    user_id, course_id = uuid.uuid4(), uuid.uuid4()

    def row(status: str) -> Enrollment:
        return Enrollment(
            id=uuid.uuid4(),
            user_id=user_id,
            course_id=course_id,
            saga_id=uuid.uuid4(),
            course_title="Plant Physiology",
            status=status,
            amount_paise=100,
            currency="INR",
        )

    async with api.app.state.kit.db.session_scope() as db:
        db.add_all([row("cancelled"), row("cancelled"), row("confirmed")])
    with pytest.raises(IntegrityError):
        async with api.app.state.kit.db.session_scope() as db:
            db.add(row("pending_payment"))
