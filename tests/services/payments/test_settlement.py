"""Settling orders: verify and webhooks, forged, replayed, stale, duplicated and out of order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.kit.time import utcnow
from services.payments.models import Order, Payment
from services.payments.orders import expire_orders
from tests.services.payments.conftest import PROBLEM, PaymentsApi, now_epoch

pytestmark = pytest.mark.integration


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _payments(api: PaymentsApi) -> list[Payment]:
    async with api.app.state.kit.db.session_scope() as db:
        return list((await db.execute(select(Payment))).scalars())


async def _order(api: PaymentsApi, order_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/payments/orders/{order_id}", headers=api.admin)
    order: dict[str, Any] = response.json()
    return order


async def test_a_good_signature_pays_the_order_once(payments: PaymentsApi) -> None:
    succeeded, revenue = metric("cerebrum_payments_total", outcome="succeeded"), metric("cerebrum_revenue_paise_total")
    course_id = str(uuid.uuid4())
    order = await payments.create_order(course_id=course_id)
    checkout = await payments.checkout(order["order_id"])
    first = await payments.verify(checkout)
    assert first.status_code == 200, first.text
    paid = first.json()
    assert paid["status"] == "captured" and paid["order_status"] == "paid"
    assert paid["provider_payment_id"] == checkout["razorpay_payment_id"]
    assert paid["invoice_number"].endswith("/000001")

    again = await payments.verify(checkout)
    assert again.status_code == 200 and again.json() == paid
    (event,) = await payments.outbox("payment.succeeded")
    assert event.data == {
        "payment_id": paid["payment_id"],
        "order_id": order["order_id"],
        "enrollment_id": order["enrollment_id"],
        "user_id": order["user_id"],
        "course_id": course_id,
        "amount_paise": 1999900,
        "currency": "INR",
    }
    assert len(await _payments(payments)) == 1
    assert metric("cerebrum_payments_total", outcome="succeeded") == succeeded + 1
    assert metric("cerebrum_revenue_paise_total") == revenue + 1999900
    assert [e.outcome for e in await payments.audit(action="verify")] == ["paid", "duplicate"]


async def test_a_forged_signature_is_refused_and_audited(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    checkout = await payments.checkout(order["order_id"])
    forged = await payments.verify(checkout, razorpay_signature="0" * 64)
    assert forged.status_code == 400 and forged.headers["content-type"] == PROBLEM
    assert forged.json()["type"].endswith("/bad-signature")
    other_payment = await payments.verify(checkout, razorpay_payment_id="pay_AAAAAAAAAAAAAA")
    assert other_payment.status_code == 400
    entries = await payments.audit(action="verify")
    assert [(e.outcome, str(e.order_id), e.client_ip) for e in entries] == [
        ("bad_signature", order["order_id"], "203.0.113.7")
    ] * 2
    assert entries[0].actor == f"student:{payments.student_id}"
    assert (await _order(payments, order["order_id"]))["status"] == "created"
    assert await payments.outbox("payment.succeeded") == [] and await _payments(payments) == []


async def test_a_forged_webhook_is_refused_and_audited(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    webhook = (await payments.checkout(order["order_id"]))["webhook"]
    forged = {**webhook, "headers": {**webhook["headers"], "X-Razorpay-Signature": "f" * 64}}
    response = await payments.deliver(forged)
    assert response.status_code == 400 and response.headers["content-type"] == PROBLEM
    unsigned = {**webhook, "headers": {"Content-Type": "application/json"}}
    assert (await payments.deliver(unsigned)).status_code == 400
    tampered = {**webhook, "body": webhook["body"].replace('"amount":1999900', '"amount":100')}
    assert (await payments.deliver(tampered)).status_code == 400
    assert [e.outcome for e in await payments.audit(action="webhook")] == ["forged"] * 3
    assert await _payments(payments) == [] and await payments.count("webhook_events") == 0
    assert (await payments.deliver(webhook)).json() == {"status": "processed"}, "the genuine one still counts"


async def test_a_replayed_webhook_changes_nothing(payments: PaymentsApi) -> None:
    duplicates = metric("cerebrum_payment_webhooks_total", outcome="duplicate")
    order = await payments.create_order()
    webhook = (await payments.checkout(order["order_id"]))["webhook"]
    assert (await payments.deliver(webhook)).json() == {"status": "processed"}
    replay = await payments.deliver(webhook)
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert len(await _payments(payments)) == 1 and len(await payments.outbox("payment.succeeded")) == 1
    assert [e.outcome for e in await payments.audit(action="webhook")] == ["paid", "duplicate"]
    assert metric("cerebrum_payment_webhooks_total", outcome="duplicate") == duplicates + 1


async def test_a_webhook_older_than_the_replay_window_is_refused(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    webhook = (await payments.checkout(order["order_id"]))["webhook"]
    stale = payments.signed_webhook(payments.reworded(webhook, created_at=now_epoch() - 301))
    response = await payments.deliver(stale)
    assert response.status_code == 400 and "replay window" in response.json()["detail"]
    (entry,) = await payments.audit(action="webhook")
    assert entry.outcome == "stale"
    assert await _payments(payments) == []
    fresh = payments.signed_webhook(payments.reworded(webhook, created_at=now_epoch() - 200))
    assert (await payments.deliver(fresh)).json() == {"status": "processed"}


async def test_failed_then_captured_pays_once_after_one_failure(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    failed = await payments.checkout(order["order_id"], "failure")
    assert failed["razorpay_signature"] is None
    assert (await payments.deliver(failed["webhook"])).json() == {"status": "processed"}
    assert (await _order(payments, order["order_id"]))["status"] == "failed"
    again = payments.signed_webhook(payments.reworded(failed["webhook"], id="evt_retryFailure01"))
    assert (await payments.deliver(again)).json() == {"status": "processed"}
    (failure,) = await payments.outbox("payment.failed")
    assert failure.data == {
        "order_id": order["order_id"],
        "enrollment_id": order["enrollment_id"],
        "user_id": order["user_id"],
        "reason": "Payment was declined by the bank (sandbox)",
    }

    captured = (await payments.checkout(order["order_id"]))["webhook"]
    assert (await payments.deliver(captured)).json() == {"status": "processed"}
    twice = payments.signed_webhook(payments.reworded(captured, id="evt_secondDelivery"))
    assert (await payments.deliver(twice)).json() == {"status": "processed"}
    late_failure = payments.signed_webhook(payments.reworded(failed["webhook"], id="evt_lateFailure001"))
    assert (await payments.deliver(late_failure)).json() == {"status": "processed"}

    assert len(await _payments(payments)) == 1
    assert len(await payments.outbox("payment.succeeded")) == 1
    assert len(await payments.outbox("payment.failed")) == 1
    assert (await _order(payments, order["order_id"]))["status"] == "paid"


async def test_a_webhook_after_verify_and_a_verify_after_the_webhook_pay_once(payments: PaymentsApi) -> None:
    first, second = await payments.create_order(), await payments.create_order()
    checkout = await payments.checkout(first["order_id"])
    assert (await payments.verify(checkout)).status_code == 200
    assert (await payments.deliver(checkout["webhook"])).json() == {"status": "processed"}

    checkout = await payments.checkout(second["order_id"])
    assert (await payments.deliver(checkout["webhook"])).json() == {"status": "processed"}
    verified = await payments.verify(checkout)
    assert verified.status_code == 200 and verified.json()["order_status"] == "paid"

    assert len(await _payments(payments)) == 2
    paid = [e.data["order_id"] for e in await payments.outbox("payment.succeeded")]
    assert sorted(paid) == sorted([first["order_id"], second["order_id"]])


async def test_verify_and_webhook_racing_pay_once(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    checkout = await payments.checkout(order["order_id"])
    webhooks = [
        payments.signed_webhook(payments.reworded(checkout["webhook"], id=f"evt_race{i:010d}")) for i in range(4)
    ]
    replies = await asyncio.gather(
        *(payments.verify(checkout) for _ in range(4)), *(payments.deliver(w) for w in webhooks)
    )
    assert {r.status_code for r in replies} == {200}
    assert len(await _payments(payments)) == 1 and len(await payments.outbox("payment.succeeded")) == 1


async def test_a_capture_for_another_amount_or_a_cancelled_order_buys_nothing(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    checkout = await payments.checkout(order["order_id"])
    event = payments.reworded(checkout["webhook"])
    event["payload"]["payment"]["entity"]["amount"] = 100
    assert (await payments.deliver(payments.signed_webhook(event))).json() == {"status": "processed"}
    cancelled = await payments.create_order()
    await payments.client.post(f"/payments/orders/{cancelled['order_id']}/cancel", headers=payments.service)
    assert (await payments.verify(await payments.checkout(cancelled["order_id"]))).json()["status"] == "refund_due"
    assert {p.status for p in await _payments(payments)} == {"refund_due"}
    assert await payments.outbox("payment.succeeded") == []
    assert len(await payments.audit(outcome="refund_due")) == 2


async def test_unknown_events_and_orders_are_acknowledged_and_ignored(payments: PaymentsApi) -> None:
    order = await payments.create_order()
    webhook = (await payments.checkout(order["order_id"]))["webhook"]
    other = payments.signed_webhook(payments.reworded(webhook, event="refund.created"))
    assert (await payments.deliver(other)).json() == {"status": "ignored"}
    event = payments.reworded(webhook, id="evt_unknownOrder00")
    event["payload"]["payment"]["entity"]["order_id"] = "order_NotOursAtAll00"
    assert (await payments.deliver(payments.signed_webhook(event))).json() == {"status": "ignored"}
    garbage = payments.signed_webhook({"hello": "world"})
    assert (await payments.deliver(garbage)).status_code == 400
    assert (await payments.client.post("/payments/webhooks/stripe", content=b"{}")).status_code == 404
    assert [e.outcome for e in await payments.audit(action="webhook")] == ["ignored", "ignored", "invalid"]
    assert await _payments(payments) == []


async def test_unpaid_orders_expire_with_payment_failed(payments: PaymentsApi) -> None:
    expired = metric("cerebrum_payments_total", outcome="expired")
    unpaid, paid = await payments.create_order(), await payments.create_order()
    await payments.verify(await payments.checkout(paid["order_id"]))
    db = payments.app.state.kit.db
    async with db.session_scope() as session:
        assert await expire_orders(db=session, now=utcnow()) == 0, "nothing is due yet"
    later = utcnow() + timedelta(seconds=payments.settings.order_ttl_seconds + 1)
    async with db.session_scope() as session:
        assert await expire_orders(db=session, now=later) == 1
    async with db.session_scope() as session:
        assert await expire_orders(db=session, now=later) == 0
        statuses = dict((await session.execute(select(Order.provider_order_id, Order.status))).tuples().all())
    assert statuses == {unpaid["provider_order_id"]: "expired", paid["provider_order_id"]: "paid"}
    (event,) = await payments.outbox("payment.failed")
    assert event.data == {
        "order_id": unpaid["order_id"],
        "enrollment_id": unpaid["enrollment_id"],
        "user_id": unpaid["user_id"],
        "reason": "expired",
    }
    (entry,) = await payments.audit(action="expire_order")
    assert entry.actor == "system:expiry" and str(entry.order_id) == unpaid["order_id"]
    assert metric("cerebrum_payments_total", outcome="expired") == expired + 1


async def test_published_events_keep_their_contracts(payments: PaymentsApi) -> None:
    from services.contracts.events import parse

    paid = await payments.create_order()
    await payments.verify(await payments.checkout(paid["order_id"]))
    failed = await payments.create_order(key="another-order", amount_paise=120000)
    failure = await payments.checkout(failed["order_id"], outcome="failure")
    await payments.client.post(
        "/payments/webhooks/razorpay", content=failure["webhook"]["body"], headers=failure["webhook"]["headers"]
    )
    dropped = await payments.create_order(key="a-dropped-order", amount_paise=130000)
    await payments.client.post(f"/payments/orders/{dropped['order_id']}/cancel", headers=payments.service)
    body = {"plan": "neet-monthly"}
    subscribed = await payments.client.post(
        "/subscriptions/create", json=body, headers={**payments.student, "Idempotency-Key": "contract-sub"}
    )
    subscription = subscribed.json()
    await payments.verify(await payments.checkout(subscription["order"]["order_id"]))
    await payments.client.put(f"/subscriptions/{subscription['subscription_id']}/cancel", headers=payments.student)
    events = await payments.outbox()
    assert {e.type for e in events} == {
        "payment.succeeded",
        "payment.failed",
        "payment.order_cancelled",
        "subscription.activated",
        "subscription.cancelled",
    }
    for event in events:
        parse(event.type, event.data)
