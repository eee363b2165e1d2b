"""The payments API as `cerebrum up` runs it with no servers: SQLite and the Redis stand-in."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select

from services.payments.app import create_app
from services.payments.models import Payment
from services.payments.settings import PaymentsSettings
from tests.apps import embedded, running
from tests.services.payments.conftest import PaymentsApi


async def test_an_order_is_paid_end_to_end_embedded(embedded_payments: PaymentsApi) -> None:
    api = embedded_payments
    # A student's own order (not tied to an enrolment: those come from the enrolment saga).
    order = await api.create_order(as_=api.student, key="embedded-1", enrollment_id=None, course_id=None)
    again = await api.client.post(
        "/payments/create-order",
        json=api.order_body(enrollment_id=None, course_id=None, amount_paise=12345),
        headers={**api.student, "Idempotency-Key": "embedded-1"},
    )
    assert again.status_code == 409, "same key, another body"

    failed = await api.checkout(order["order_id"], "failure")
    assert (await api.deliver(failed["webhook"])).json() == {"status": "processed"}
    checkout = await api.checkout(order["order_id"])
    verified = await api.verify(checkout)
    assert verified.status_code == 200, verified.text
    assert (await api.deliver(checkout["webhook"])).json() == {"status": "processed"}
    assert (await api.deliver(checkout["webhook"])).json() == {"status": "duplicate"}
    assert (await api.verify(checkout, razorpay_signature="bad")).status_code == 400

    assert [e.type for e in await api.outbox()] == ["payment.failed", "payment.succeeded"]
    async with api.app.state.kit.db.session_scope() as db:
        assert len((await db.execute(select(Payment))).scalars().all()) == 1

    history = (await api.client.get(f"/payments/history/{api.student_id}", headers=api.student)).json()
    (item,) = history["items"]
    assert item["status"] == "paid" and item["invoice_number"] == verified.json()["invoice_number"]
    invoice = await api.client.get(f"/billing/invoice/{item['invoice_id']}", headers=api.student)
    assert invoice.json()["base_paise"] + invoice.json()["gst_paise"] == 1999900

    card = {
        "kind": "card",
        "token": "token_Embedded0001",
        "brand": "rupay",
        "last4": "1234",
        "expiry_month": 1,
        "expiry_year": 2031,
    }
    assert (await api.client.post("/payments/methods", json=card, headers=api.student)).status_code == 201
    assert [m["last4"] for m in (await api.client.get("/payments/methods", headers=api.student)).json()] == ["1234"]
    assert (await api.client.post(f"/payments/orders/{order['order_id']}/cancel", headers=api.admin)).status_code == 409
    ready = await api.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_the_background_loop_expires_unpaid_orders(tmp_path: Path) -> None:
    settings = PaymentsSettings(
        **{**embedded(tmp_path), "redis_key_prefix": f"test:{uuid.uuid4().hex[:12]}:"},
        order_ttl_seconds=1,
        order_expiry_interval_seconds=0.1,
    )
    app = create_app(settings)
    async with running(app) as client:
        api = PaymentsApi(client, app, settings)
        order = await api.create_order()
        for _ in range(50):
            if (await api.client.get(f"/payments/orders/{order['order_id']}", headers=api.admin)).json()[
                "status"
            ] == "expired":
                break
            await asyncio.sleep(0.1)
        (event,) = await api.outbox("payment.failed")
        assert event.data["order_id"] == order["order_id"] and event.data["reason"] == "expired"
