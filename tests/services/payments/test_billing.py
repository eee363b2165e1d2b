"""Invoices numbered without gaps per financial year, with GST shown; subscriptions paid per period."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from services.payments.billing import financial_year, split_gst
from services.payments.subscriptions import add_months
from tests.services.payments.conftest import PROBLEM, PaymentsApi


def test_the_financial_year_runs_april_to_march_in_india() -> None:
    assert financial_year(datetime(2026, 3, 31, 18, 29, tzinfo=UTC)) == "2025-26"
    assert financial_year(datetime(2026, 3, 31, 18, 30, tzinfo=UTC)) == "2026-27", "midnight IST, 1 April"
    assert financial_year(datetime(2099, 12, 1, tzinfo=UTC)) == "2099-00"


def test_gst_is_split_out_of_an_inclusive_total() -> None:
    assert split_gst(118_00) == (100_00, 18_00)
    assert split_gst(1999900) == (1694831, 305069)
    for total in (1, 2, 99, 12345, 999_999_99):
        base, gst = split_gst(total)
        assert base + gst == total and base == round(total * 100 / 118)


def test_a_month_later_keeps_the_day_or_takes_the_last_one() -> None:
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 12) == datetime(2027, 11, 15, tzinfo=UTC)


@pytest.mark.integration
async def test_twenty_concurrent_payments_get_sequential_gapless_invoices(payments: PaymentsApi) -> None:
    orders = await asyncio.gather(*(payments.create_order(amount_paise=10_000 + i) for i in range(20)))
    checkouts = await asyncio.gather(*(payments.checkout(o["order_id"]) for o in orders))
    replies = await asyncio.gather(*(payments.verify(c) for c in checkouts))
    assert {r.status_code for r in replies} == {200}, [r.text for r in replies if r.status_code != 200]
    year = financial_year(datetime.now(UTC))
    numbers = sorted(r.json()["invoice_number"] for r in replies)
    assert numbers == [f"CBA/{year}/{n:06d}" for n in range(1, 21)]

    invoice_id = replies[0].json()["invoice_id"]
    invoice = (await payments.client.get(f"/billing/invoice/{invoice_id}", headers=payments.student)).json()
    base, gst = split_gst(invoice["total_paise"])
    assert (invoice["base_paise"], invoice["gst_paise"], invoice["gst_rate_percent"]) == (base, gst, 18)
    assert invoice["currency"] == "INR" and invoice["financial_year"] == year
    assert invoice["user_id"] == str(payments.student_id)
    assert (await payments.client.get(f"/billing/invoice/{invoice_id}", headers=payments.other)).status_code == 403
    assert (await payments.client.get(f"/billing/invoice/{uuid.uuid4()}", headers=payments.admin)).status_code == 404


@pytest.mark.integration
async def test_a_subscription_starts_when_its_first_order_is_paid(payments: PaymentsApi) -> None:
    body = {"plan": "neet-monthly"}
    headers = {**payments.student, "Idempotency-Key": "sub-1"}
    created = await payments.client.post("/subscriptions/create", json=body, headers=headers)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["status"] == "pending" and subscription["user_id"] == str(payments.student_id)
    again = await payments.client.post("/subscriptions/create", json=body, headers=headers)
    assert again.status_code == 200 and again.json() == subscription
    other = await payments.client.post("/subscriptions/create", json={"plan": "neet-yearly"}, headers=headers)
    assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
    for_other = {**body, "user_id": str(payments.other_id)}
    refused = await payments.client.post(
        "/subscriptions/create", json=for_other, headers={**payments.student, "Idempotency-Key": "sub-2"}
    )
    assert refused.status_code == 403

    paid = await payments.verify(await payments.checkout(subscription["order"]["order_id"]))
    assert paid.status_code == 200
    (activated,) = await payments.outbox("subscription.activated")
    assert activated.data["subscription_id"] == subscription["subscription_id"]

    url = f"/subscriptions/{subscription['subscription_id']}/cancel"
    assert (await payments.client.put(url, headers=payments.other)).status_code == 403
    cancelled = (await payments.client.put(url, headers=payments.student)).json()
    assert cancelled["status"] == "cancelled" and cancelled["current_period_end"] == activated.data[
        "current_period_end"
    ].replace("+00:00", "Z")
    assert (await payments.client.put(url, headers=payments.admin)).json()["status"] == "cancelled"
    assert len(await payments.outbox("subscription.cancelled")) == 1
    assert await payments.outbox("payment.order_cancelled") == [], "the paid order stays paid"


@pytest.mark.integration
async def test_cancelling_a_pending_subscription_cancels_its_order(payments: PaymentsApi) -> None:
    body = {"plan": "neet-yearly"}
    created = await payments.client.post(
        "/subscriptions/create", json=body, headers={**payments.student, "Idempotency-Key": "y"}
    )
    subscription = created.json()
    cancelled = await payments.client.put(
        f"/subscriptions/{subscription['subscription_id']}/cancel", headers=payments.student
    )
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["order"]["status"] == "cancelled"
    (event,) = await payments.outbox("payment.order_cancelled")
    assert event.data["order_id"] == subscription["order"]["order_id"]
