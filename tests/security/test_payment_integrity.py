"""A payment settles only what it was opened for: a student's own order buys no enrolment, cheaply or not."""

from __future__ import annotations

import uuid

import pytest

from tests.security.world import Academy, expect

COURSE_PRICE = 49_900


async def order_naming(a: Academy, payer: str, enrollment_id: str, amount_paise: int) -> tuple[int, str]:
    """The payer opens an order of their own that names an enrolment; returns the status (and the order)."""
    account = a.accounts[payer]
    body = {
        "user_id": str(account.user_id),
        "enrollment_id": enrollment_id,
        "amount_paise": amount_paise,
        "description": "Biology notes",
    }
    response = await a.http.post(
        "/api/payments/create-order", json=body, headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    return response.status_code, response.json().get("order_id", "")


@pytest.mark.parametrize(
    ("payer", "amount_paise"),
    [("bob", 100), ("bob", COURSE_PRICE), ("alice", 100)],
    ids=["another student pays a token sum", "another student pays the price", "the student pays a token sum"],
)
async def test_an_order_a_student_opens_does_not_confirm_an_enrolment(
    academy: Academy, payer: str, amount_paise: int
) -> None:
    a, alice = academy, academy.accounts["alice"]
    pending = await a.enrol(alice, await a.new_course(price_paise=COURSE_PRICE))
    enrollment_id = pending["enrollment_id"]
    status, order_id = await order_naming(a, payer, enrollment_id, amount_paise)
    if status in (400, 403, 409, 422):
        return  # refused outright: the fix this test asks for
    assert status == 201, f"create-order answered {status}"
    await a.pay(a.accounts[payer], order_id)

    await a.delivered()
    now = await a.enrolment_status(alice, enrollment_id)
    assert now == "pending_payment", (
        f"an order {payer} opened for ₹{amount_paise / 100:.2f}, naming alice's ₹{COURSE_PRICE / 100:.0f} "
        f"enrolment, made it {now}"
    )
    order = expect(await a.http.get(f"/api/payments/orders/{pending['order']['order_id']}", headers=alice.headers), 200)
    assert order["status"] == "created", "the enrolment's own order should still be the one to pay"
