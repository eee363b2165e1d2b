"""Payment webhooks: forged, replayed, wrong-amount and stale notices are refused or neutralised, and audited."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from services.payments.models import AuditEntry, Order, Payment
from services.payments.providers import ProviderPayment, SandboxProvider, hmac_hex
from tests.security.world import Academy, expect

WEBHOOK = "/payments/webhooks/razorpay"


def webhook_secret(a: Academy) -> str:
    secret = a.apps["payments"].state.payments.provider.keys.webhook_secret
    return str(secret.get_secret_value())


def signed_notice(a: Academy, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Razorpay-Signature": hmac_hex(webhook_secret(a), body)}


async def audit_outcomes(a: Academy) -> Counter[str]:
    """How many webhook audit rows there are, by outcome."""
    async with a.platform.kit("payments").db.session_scope() as db:
        rows = await db.execute(
            select(AuditEntry.outcome, func.count()).where(AuditEntry.action == "webhook").group_by(AuditEntry.outcome)
        )
        return Counter({outcome: count for outcome, count in rows.all()})


async def order_state(a: Academy, order_id: str) -> tuple[str, list[tuple[str, int]]]:
    """An order's status and its payments (status, amount)."""
    async with a.platform.kit("payments").db.session_scope() as db:
        order = await db.get(Order, uuid.UUID(order_id))
        assert order is not None
        payments = await db.execute(select(Payment.status, Payment.amount_paise).where(Payment.order_id == order.id))
        return order.status, sorted((status, amount) for status, amount in payments.all())


async def pending_checkout(a: Academy) -> tuple[str, str, dict[str, Any]]:
    """Alice's new enrolment, its order, and the sandbox checkout's webhook (not yet delivered)."""
    alice = a.accounts["alice"]
    started = await a.enrol(alice)
    order_id = started["order"]["order_id"]
    checkout = expect(
        await a.http.post(
            "/payments/sandbox/checkout", json={"order_id": order_id, "outcome": "success"}, headers=alice.headers
        ),
        200,
    )
    return started["enrollment_id"], order_id, checkout


async def post(a: Academy, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = await a.http.post(path, content=body, headers=headers)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, response.json()


@pytest.mark.parametrize("path", [WEBHOOK, "/api" + WEBHOOK], ids=["direct", "gateway"])
async def test_forged_signature_is_refused_and_audited(academy: Academy, path: str) -> None:
    _, order_id, checkout = await pending_checkout(academy)
    body = checkout["webhook"]["body"].encode()
    before = await audit_outcomes(academy)
    forgeries = [
        {"Content-Type": "application/json", "X-Razorpay-Signature": hmac_hex("not-the-secret", body)},
        {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": checkout["webhook"]["headers"]["X-Razorpay-Signature"][:-2] + "00",
        },
        {"Content-Type": "application/json"},
    ]
    for headers in forgeries:
        status, problem = await post(academy, path, body, headers)
        assert status in (400, 401), problem
    # The right signature over a body changed afterwards (a bigger amount) is a forgery too.
    raw = orjson.loads(body)
    raw["payload"]["payment"]["entity"]["amount"] = 1
    status, _ = await post(academy, path, orjson.dumps(raw), checkout["webhook"]["headers"])
    assert status in (400, 401)
    assert (await audit_outcomes(academy))["forged"] - before["forged"] == len(forgeries) + 1
    assert await order_state(academy, order_id) == ("created", []), "a forged webhook paid the order"


@pytest.mark.parametrize("path", [WEBHOOK, "/api" + WEBHOOK], ids=["direct", "gateway"])
async def test_replayed_event_is_acknowledged_once_and_audited(academy: Academy, path: str) -> None:
    _, order_id, checkout = await pending_checkout(academy)
    body, headers = checkout["webhook"]["body"].encode(), checkout["webhook"]["headers"]
    before = await audit_outcomes(academy)
    assert await post(academy, path, body, headers) == (200, {"status": "processed"})
    paid = await order_state(academy, order_id)
    assert paid[0] == "paid" and len(paid[1]) == 1
    for _ in range(3):
        assert await post(academy, path, body, headers) == (200, {"status": "duplicate"})
    # The same capture under a new event id (a provider retry, or a replay with the id changed and
    # re-signed) must not pay twice either.
    raw = orjson.loads(body)
    raw["id"] = "evt_" + uuid.uuid4().hex[:14]
    renamed = orjson.dumps(raw)
    assert (await post(academy, path, renamed, signed_notice(academy, renamed)))[0] == 200
    after = await audit_outcomes(academy)
    assert after["duplicate"] - before["duplicate"] >= 4, after
    assert await order_state(academy, order_id) == paid, "a replayed webhook changed the payment"


@pytest.mark.parametrize("path", [WEBHOOK, "/api" + WEBHOOK], ids=["direct", "gateway"])
async def test_wrong_amount_is_kept_for_refund_and_buys_nothing(academy: Academy, path: str) -> None:
    enrollment_id, order_id, checkout = await pending_checkout(academy)
    raw = orjson.loads(checkout["webhook"]["body"])
    entity = raw["payload"]["payment"]["entity"]
    payment = ProviderPayment(
        payment_id=entity["id"], order_id=entity["order_id"], amount_paise=100, currency="INR", status="captured"
    )
    body = SandboxProvider.webhook_body(payment)
    before = await audit_outcomes(academy)
    status, ack = await post(academy, path, body, signed_notice(academy, body))
    assert status in (200, 400, 409), ack
    assert (await audit_outcomes(academy))["refund_due"] - before["refund_due"] == 1
    order_status, payments = await order_state(academy, order_id)
    assert order_status == "created", "an underpaid capture paid the order"
    assert payments == [("refund_due", 100)], payments
    await _still_unconfirmed(academy, enrollment_id)


@pytest.mark.parametrize("path", [WEBHOOK, "/api" + WEBHOOK], ids=["direct", "gateway"])
async def test_stale_webhook_is_refused_and_audited(academy: Academy, path: str) -> None:
    enrollment_id, order_id, checkout = await pending_checkout(academy)
    raw = orjson.loads(checkout["webhook"]["body"])
    window = academy.apps["payments"].state.payments.settings.webhook_replay_window_seconds
    before = await audit_outcomes(academy)
    for created_at in (int(time.time()) - window - 60, int(time.time()) + window + 60, 0):
        raw["created_at"] = created_at
        raw["id"] = "evt_" + uuid.uuid4().hex[:14]
        body = orjson.dumps(raw)
        status, problem = await post(academy, path, body, signed_notice(academy, body))
        assert status == 400, problem
    assert (await audit_outcomes(academy))["stale"] - before["stale"] == 3
    assert await order_state(academy, order_id) == ("created", []), "a stale webhook paid the order"
    await _still_unconfirmed(academy, enrollment_id)


async def test_webhook_for_another_provider_route_is_not_taken(academy: Academy) -> None:
    _, order_id, checkout = await pending_checkout(academy)
    body, headers = checkout["webhook"]["body"].encode(), checkout["webhook"]["headers"]
    assert (await academy.http.post("/payments/webhooks/stripe", content=body, headers=headers)).status_code == 404
    gateway = await academy.http.post("/api/payments/webhooks/stripe", content=body, headers=headers)
    assert gateway.status_code == 401, "only the configured provider's webhook is open at the edge"
    assert await order_state(academy, order_id) == ("created", [])


async def _still_unconfirmed(a: Academy, enrollment_id: str) -> None:
    status = await a.enrolment_status(a.accounts["alice"], enrollment_id)
    assert status == "pending_payment", f"the enrolment is {status} without a valid payment"
