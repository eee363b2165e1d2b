"""Orders: created once per idempotency key, only by their student or for them, cancelled once."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from tests.services.payments.conftest import PROBLEM, PaymentsApi

pytestmark = pytest.mark.integration


async def test_an_order_is_created_once_per_idempotency_key(payments: PaymentsApi) -> None:
    body = payments.order_body()
    headers = {**payments.service, "Idempotency-Key": "enrol-42"}  # the enrolment saga makes these
    first = await payments.client.post("/payments/create-order", json=body, headers=headers)
    assert first.status_code == 201, first.text
    order = first.json()
    assert re.fullmatch(r"order_[A-Za-z0-9]{14}", order["provider_order_id"])
    assert order["status"] == "created" and order["amount_paise"] == 1999900 and order["currency"] == "INR"
    assert order["user_id"] == body["user_id"] and order["enrollment_id"] == body["enrollment_id"]
    assert order["key_id"].startswith("rzp_test_") and order["expires_at"]
    assert set(order) == {
        "order_id",
        "provider_order_id",
        "status",
        "amount_paise",
        "currency",
        "user_id",
        "enrollment_id",
        "expires_at",
        "key_id",
    }

    again = await payments.client.post("/payments/create-order", json=body, headers=headers)
    assert again.status_code == 200 and again.json() == order

    changed = await payments.client.post("/payments/create-order", json={**body, "amount_paise": 100}, headers=headers)
    assert changed.status_code == 409 and changed.headers["content-type"] == PROBLEM
    assert "different request" in changed.json()["detail"]
    assert await payments.count("orders") == 1
    assert [e.outcome for e in await payments.audit(action="create_order")] == ["created", "replayed", "key_reused"]


async def test_concurrent_retries_of_one_key_create_one_order(payments: PaymentsApi) -> None:
    body = payments.order_body()
    headers = {**payments.service, "Idempotency-Key": str(uuid.uuid4())}
    replies = await asyncio.gather(
        *(payments.client.post("/payments/create-order", json=body, headers=headers) for _ in range(8))
    )
    assert sorted(r.status_code for r in replies) == [200] * 7 + [201]
    assert len({r.json()["order_id"] for r in replies}) == 1
    assert await payments.count("orders") == 1


async def test_a_student_touches_only_their_own_payments(payments: PaymentsApi) -> None:
    theirs = payments.order_body(user_id=str(payments.other_id))
    refused = await payments.client.post(
        "/payments/create-order", json=theirs, headers={**payments.student, "Idempotency-Key": "k1"}
    )
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert await payments.count("orders") == 0
    assert [(e.action, e.outcome) for e in await payments.audit()] == [("create_order", "forbidden")]

    order = await payments.create_order()
    paid = await payments.verify(await payments.checkout(order["order_id"]))
    invoice_id = paid.json()["invoice_id"]
    for url in (
        f"/payments/history/{payments.student_id}",
        f"/billing/invoice/{invoice_id}",
        f"/payments/orders/{order['order_id']}",
    ):
        assert (await payments.client.get(url, headers=payments.other)).status_code == 403, url
        assert (await payments.client.get(url, headers=payments.student)).status_code == 200, url
        assert (await payments.client.get(url, headers=payments.admin)).status_code == 200, url
        anonymous = await payments.client.get(url)
        assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
    cancel = await payments.client.post(f"/payments/orders/{order['order_id']}/cancel", headers=payments.other)
    assert cancel.status_code == 403
    anonymous = await payments.client.post(
        "/payments/create-order", json=payments.order_body(), headers={"Idempotency-Key": "k2"}
    )
    assert anonymous.status_code == 401
    assert len(await payments.audit(outcome="forbidden")) == 5


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ({"amount_paise": 0}, {}),
        ({"amount_paise": -5}, {}),
        ({"currency": "USD"}, {}),
        ({"description": ""}, {}),
        ({"user_id": "not-a-uuid"}, {}),
        ({"coupon": "FREE"}, {}),
        ({}, {"Idempotency-Key": "k" * 101}),
        ({}, {"Idempotency-Key": None}),
    ],
)
async def test_bad_requests_are_problems_and_write_nothing(
    payments: PaymentsApi, change: dict[str, object], headers: dict[str, str | None]
) -> None:
    sent = {**payments.service, "Idempotency-Key": "k", **headers}
    response = await payments.client.post(
        "/payments/create-order",
        json=payments.order_body(**change),
        headers={k: v for k, v in sent.items() if v is not None},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM and response.json()["errors"]
    for table in ("orders", "idempotency_keys", "payment_audit_log", "outbox"):
        assert await payments.count(table) == 0, table


async def test_a_non_json_body_is_a_problem(payments: PaymentsApi) -> None:
    response = await payments.client.post(
        "/payments/create-order",
        content=b"{not json",
        headers={**payments.service, "Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert await payments.count("orders") == 0


async def test_cancelling_is_idempotent_and_refused_once_paid(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    url = f"/payments/orders/{order['order_id']}/cancel"
    for _ in range(2):
        cancelled = await payments.client.post(url, headers=payments.service)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    events = await payments.outbox("payment.order_cancelled")
    assert [e.data["order_id"] for e in events] == [order["order_id"]]
    assert events[0].data["enrollment_id"] == order["enrollment_id"]

    paid = await payments.create_order()
    assert (await payments.verify(await payments.checkout(paid["order_id"]))).status_code == 200
    refused = await payments.client.post(f"/payments/orders/{paid['order_id']}/cancel", headers=payments.student)
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert len(await payments.outbox("payment.order_cancelled")) == 1
    assert [e.outcome for e in await payments.audit(action="cancel_order")] == [
        "cancelled",
        "already_cancelled",
        "refused",
    ]
    missing = await payments.client.post(f"/payments/orders/{uuid.uuid4()}/cancel", headers=payments.service)
    assert missing.status_code == 404


async def test_history_lists_orders_newest_first_a_page_at_a_time(payments: PaymentsApi) -> None:
    created = [await payments.create_order(amount_paise=1000 * (i + 1)) for i in range(3)]
    await payments.verify(await payments.checkout(created[0]["order_id"]))
    url = f"/payments/history/{payments.student_id}"
    page = (await payments.client.get(url, params={"limit": 2}, headers=payments.student)).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [i["order_id"] for i in page["items"]] == [created[2]["order_id"], created[1]["order_id"]]
    last = (await payments.client.get(url, params={"limit": 2, "offset": 2}, headers=payments.student)).json()
    (item,) = last["items"]
    assert item["order_id"] == created[0]["order_id"] and item["status"] == "paid"
    assert item["invoice_number"] and item["provider_payment_id"].startswith("pay_")
    assert (await payments.client.get(url, params={"limit": 0}, headers=payments.student)).status_code == 422
