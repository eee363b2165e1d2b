"""Stored payment methods: the token is ciphertext at rest and never leaves in a response or a log."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.payments.keys import TokenVault, payment_methods_key
from tests.conftest import LogCapture
from tests.services.payments.conftest import PROBLEM, PaymentsApi

pytestmark = pytest.mark.integration
TOKEN = "token_Nr7xWq93LmZpQa"
CARD = {"kind": "card", "token": TOKEN, "brand": "Visa", "last4": "4242", "expiry_month": 12, "expiry_year": 2030}


async def test_a_stored_token_is_encrypted_and_never_shown(payments: PaymentsApi, logs: LogCapture) -> None:
    saved = await payments.client.post("/payments/methods", json=CARD, headers=payments.student)
    assert saved.status_code == 201, saved.text
    method = saved.json()
    assert {k: method[k] for k in ("kind", "brand", "last4", "expiry_month", "expiry_year")} == {
        "kind": "card",
        "brand": "visa",
        "last4": "4242",
        "expiry_month": 12,
        "expiry_year": 2030,
    }
    upi = {"kind": "upi", "token": "token_UpiHandle0001", "brand": "upi"}
    assert (await payments.client.post("/payments/methods", json=upi, headers=payments.student)).status_code == 201

    listed = await payments.client.get("/payments/methods", headers=payments.student)
    assert [m["kind"] for m in listed.json()] == ["upi", "card"]
    assert (await payments.client.get("/payments/methods", headers=payments.other)).json() == []
    assert (await payments.client.get("/payments/methods")).status_code == 401

    async with payments.app.state.kit.db.session_scope() as db:
        stored = (await db.execute(text("SELECT * FROM payment_methods WHERE kind = 'card'"))).mappings().one()
    assert TOKEN not in str(dict(stored))
    assert TokenVault(payment_methods_key(payments.settings)).open(stored["token_ciphertext"]) == TOKEN
    for response in (saved, listed):
        assert TOKEN not in response.text and "token" not in response.text
    assert "payment_method_saved" in logs.text()
    assert TOKEN not in logs.text() and "UpiHandle" not in logs.text()


@pytest.mark.parametrize(
    "change",
    [
        {"token": "4111 1111 1111 1111"},
        {"token": "4111111111111111"},
        {"last4": "42"},
        {"expiry_month": 13},
        {"expiry_month": None},
        {"kind": "wallet"},
        {"cvv": "123"},
    ],
)
async def test_bad_payment_methods_are_refused_and_not_echoed(
    payments: PaymentsApi, logs: LogCapture, change: dict[str, object]
) -> None:
    refused = await payments.client.post("/payments/methods", json={**CARD, **change}, headers=payments.student)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    for secret in (TOKEN, "4111111111111111", "4111 1111 1111 1111"):
        assert secret not in refused.text and secret not in logs.text()
    assert await payments.count("payment_methods") == 0
