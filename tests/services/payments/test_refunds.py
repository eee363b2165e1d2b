"""Refunds: within the window the money goes back once, with a credit note; outside it nothing changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from services.payments.billing import financial_year
from services.payments.models import CreditNote, Order, Payment, Refund
from tests.services.payments.conftest import PROBLEM, PaymentsApi

pytestmark = pytest.mark.integration


async def _paid_order(payments: PaymentsApi) -> dict[str, Any]:
    order = await payments.create_order(amount_paise=1_499_900)
    paid = await payments.verify(await payments.checkout(order["order_id"]))
    assert paid.status_code == 200, paid.text
    paid_body: dict[str, Any] = paid.json()
    return paid_body


async def _refund(payments: PaymentsApi, order_id: str, headers: dict[str, str] | None = None) -> Any:
    return await payments.client.post(
        f"/payments/orders/{order_id}/refund",
        json={"reason": "cancelled_by_student"},
        headers=headers or payments.service,
    )


async def _rows(payments: PaymentsApi, model: Any) -> list[Any]:
    async with payments.app.state.kit.db.session_scope() as db:
        return list((await db.execute(select(model))).scalars())


async def test_a_refund_within_the_window_gives_the_money_back_once_with_a_credit_note(payments: PaymentsApi) -> None:
    paid = await _paid_order(payments)
    order_id = paid["order_id"]

    response = await _refund(payments, order_id)
    assert response.status_code == 200, response.text
    refund = response.json()
    assert refund["order_status"] == "refunded" and refund["amount_paise"] == 1_499_900
    assert refund["provider_refund_id"].startswith("rfnd_")
    note = refund["credit_note"]
    year = financial_year(datetime.now(UTC))
    assert note["number"] == f"CBA/CN/{year}/000001"
    assert note["invoice_number"] == paid["invoice_number"]
    assert note["base_paise"] + note["gst_paise"] == note["total_paise"] == 1_499_900

    again = await _refund(payments, order_id, headers=payments.admin)
    assert again.status_code == 200 and again.json()["refund_id"] == refund["refund_id"], "asking again changes nothing"

    assert [(r.amount_paise, str(r.order_id)) for r in await _rows(payments, Refund)] == [(1_499_900, order_id)]
    assert len(await _rows(payments, CreditNote)) == 1
    (order,) = await _rows(payments, Order)
    (payment,) = await _rows(payments, Payment)
    assert (order.status, payment.status) == ("refunded", "refunded")
    assert [a.outcome for a in await payments.audit(action="refund")] == ["refunded", "replayed"]
    (event,) = await payments.outbox("payment.refunded")
    assert event.data["credit_note_number"] == note["number"]
    assert event.data["user_id"] == str(payments.student_id) and event.data["amount_paise"] == 1_499_900

    metrics = (await payments.client.get("/metrics", headers={"Accept": "text/plain"})).text
    assert 'cerebrum_refunds_total{outcome="refunded"}' in metrics and "cerebrum_refunded_paise_total" in metrics

    history = (await payments.client.get(f"/payments/history/{payments.student_id}", headers=payments.student)).json()
    assert [(i["status"], i["invoice_number"]) for i in history["items"]] == [("refunded", paid["invoice_number"])]


async def test_outside_the_window_the_refund_is_refused_and_nothing_changes(payments: PaymentsApi) -> None:
    paid = await _paid_order(payments)
    async with payments.app.state.kit.db.session_scope() as db:
        eight_days_ago = datetime.now(UTC) - timedelta(days=8)
        await db.execute(update(Payment).values(captured_at=eight_days_ago))

    response = await _refund(payments, paid["order_id"])
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"].endswith("/refund-window-closed")
    assert "within 7 days of payment" in problem["detail"]

    (order,) = await _rows(payments, Order)
    assert order.status == "paid"
    assert await _rows(payments, Refund) == [] and await _rows(payments, CreditNote) == []
    assert await payments.outbox("payment.refunded") == []
    assert [a.outcome for a in await payments.audit(action="refund")] == ["window_closed"]


async def test_students_cannot_refund_and_an_unpaid_order_has_nothing_to_refund(payments: PaymentsApi) -> None:
    paid = await _paid_order(payments)
    assert (await _refund(payments, paid["order_id"], headers=payments.student)).status_code == 403
    unpaid = await payments.create_order()
    refused = await _refund(payments, unpaid["order_id"])
    assert refused.status_code == 409 and refused.json()["type"].endswith("/order-not-refundable")
    assert (await _refund(payments, str(uuid.uuid4()))).status_code == 404
    assert await _rows(payments, Refund) == []
