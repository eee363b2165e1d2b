"""Cancelling a paid enrolment: refunded first, then cancelled; outside the window or in an outage, nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.services.enrollments.conftest import PROBLEM, EnrollmentsApi

pytestmark = pytest.mark.integration


async def _paid(api: EnrollmentsApi) -> tuple[dict[str, Any], dict[str, str], Any]:
    course_id = api.fakes.add_course()
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    await api.pay(started)
    api.fakes.calls.clear()
    return started, headers, course_id


async def test_cancelling_a_paid_enrolment_refunds_it_then_frees_the_seat(api: EnrollmentsApi) -> None:
    started, headers, course_id = await _paid(api)
    order_id = started["order"]["order_id"]

    response = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["saga_state"]) == ("cancelled", "cancelled")
    assert api.fakes.names() == ["refund_order", "release_seat"]
    assert api.fakes.calls[0].body == {"reason": "cancelled_by_student"} and api.fakes.calls[0].role == "service"
    assert api.fakes.orders[order_id]["status"] == "refunded"
    assert api.fakes.seats_taken(course_id) == 0
    status = await api.status(started["enrollment_id"])
    assert ("refund_payment", "ok") in {(s["step"], s["outcome"]) for s in status["saga"]["steps"]}
    assert status["order"]["status"] == "refunded" and status["order"]["credit_note_number"] == "CN/1"

    again = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)
    assert again.status_code == 200 and api.fakes.names() == ["refund_order", "release_seat"], "nothing twice"


async def test_outside_the_refund_window_the_cancel_is_refused_and_nothing_changes(api: EnrollmentsApi) -> None:
    started, headers, course_id = await _paid(api)
    api.fakes.orders[started["order"]["order_id"]]["refund_window_closed"] = True

    response = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/refund-window-closed")
    assert "within 7 days of payment" in response.json()["detail"]
    assert api.fakes.names() == ["refund_order"]
    assert api.fakes.seats_taken(course_id) == 1
    status = await api.status(started["enrollment_id"])
    assert (status["status"], status["saga"]["state"]) == ("confirmed", "confirmed")
    assert await api.outbox("enrollment.cancelled") == []


async def test_a_payments_outage_answers_503_and_the_retry_cancels(api: EnrollmentsApi) -> None:
    started, headers, course_id = await _paid(api)
    api.fakes.fail("refund_order", 503)

    refused = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)
    assert refused.status_code == 503
    assert (await api.status(started["enrollment_id"]))["status"] == "confirmed"
    assert api.fakes.seats_taken(course_id) == 1

    api.fakes.heal()
    retried = await api.client.delete(f"/enrollments/{started['enrollment_id']}", headers=headers)
    assert retried.status_code == 200 and retried.json()["status"] == "cancelled"
    assert api.fakes.seats_taken(course_id) == 0


async def test_a_refund_made_at_payments_cancels_the_enrolment_and_frees_its_seat(api: EnrollmentsApi) -> None:
    started, _, course_id = await _paid(api)
    refunded = api.fakes.payment_refunded(started["order"]["order_id"])

    await api.deliver(refunded)
    await api.deliver(refunded)  # a redelivery changes nothing

    status = await api.status(started["enrollment_id"])
    assert (status["status"], status["saga"]["state"]) == ("cancelled", "cancelled")
    assert api.fakes.names() == ["release_seat"] and api.fakes.seats_taken(course_id) == 0
    assert [e.data["reason"] for e in await api.outbox("enrollment.cancelled")] == ["refunded"]
