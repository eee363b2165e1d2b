"""No secret reaches a log line or a span: a student journey, with every secret it handles searched for."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cerebrum.demo import seed_academy
from tests.conftest import LogCapture
from tests.security.embedded import bearer, running_platform
from tests.security.world import expect, until

PAN = "4111111111111111"  # Visa's Luhn-valid test number
PAN_SPACED = "4111 1111 1111 1111"


def span_text(spans: InMemorySpanExporter) -> tuple[int, str]:
    """Every span's name, attributes, events, links and status, as one text to search."""
    parts: list[str] = []
    finished = spans.get_finished_spans()
    for span in finished:
        parts.append(span.name)
        parts.extend(f"{k}={str(v)}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={str(v)}" for k, v in (event.attributes or {}).items())
        for link in span.links:
            parts.extend(f"{k}={str(v)}" for k, v in (link.attributes or {}).items())
        parts.append(span.status.description or "")
    return len(finished), "\n".join(parts)


def key_files(data_dir: Path) -> dict[str, str]:
    """The platform's generated secrets: JWT key, payment key and webhook secrets, the card-token key."""
    keys = {}
    for path in (data_dir / "keys").iterdir():
        text = path.read_text().strip()
        if path.name.endswith(".pem"):
            text = "".join(text.splitlines()[1:-1])  # the key material, without the PEM armour
        keys[f"key file {path.name}"] = text
    return keys


async def journey(api: httpx.AsyncClient, data_dir: Path, secrets: dict[str, str]) -> None:
    """Register, log in, refresh, profile, enrol, store a card, pay, webhook, notifications, log out."""
    email = f"priya.sharma.{uuid.uuid4().hex[:6]}@example.com"
    password = "Xylem-Phloem-Secret-2026"
    secrets |= {"full email": email, "password": password, "wrong password": "Wrong-Password-999"}
    body = {"email": email, "password": password, "full_name": "Priya Sharma", "phone": "+919812345678"}
    user_id = expect(await api.post("/api/auth/register", json=body), 201)["id"]
    weak = await api.post("/api/auth/register", json={**body, "email": "x" + email, "password": "password"})
    assert weak.status_code in (409, 422)
    assert (
        await api.post("/api/auth/login", json={"email": email, "password": "Wrong-Password-999"})
    ).status_code == 401
    first = expect(await api.post("/api/auth/login", json={"email": email, "password": password}), 200)
    second = expect(await api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}), 200)
    reuse = await api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    third = expect(await api.post("/api/auth/login", json={"email": email, "password": password}), 200)
    for name, tokens in (("first", first), ("second", second), ("third", third)):
        secrets[f"{name} access token"] = tokens["access_token"]
        secrets[f"{name} refresh token"] = tokens["refresh_token"]
    auth = bearer(third["access_token"])

    assert expect(await api.get("/api/users/profile", headers=auth), 200)["email"] == email
    expect(await api.put("/api/users/profile", json={"city": "Pune", "school": "DPS"}, headers=auth), 200)

    course = (await api.get("/api/courses")).json()["items"][0]
    enrolment = expect(await api.post("/api/enrollments", json={"course_id": course["id"]}, headers=auth), 201)

    method_token = f"tok_card_{uuid.uuid4().hex}"
    secrets["payment-method token"] = method_token
    card = {"kind": "card", "brand": "visa", "last4": "1111", "expiry_month": 12, "expiry_year": 2030}
    expect(await api.post("/api/payments/methods", json={**card, "token": method_token}, headers=auth), 201)
    for pan in (PAN, PAN_SPACED):
        refused = await api.post("/api/payments/methods", json={**card, "token": pan}, headers=auth)
        assert refused.status_code == 422, "a card number was accepted as a payment-method token"
    secrets |= {"card number": PAN, "card number (spaced)": PAN_SPACED}

    order_id = enrolment["order"]["order_id"]
    checkout = expect(
        await api.post(
            "/api/payments/sandbox/checkout", json={"order_id": order_id, "outcome": "success"}, headers=auth
        ),
        200,
    )
    webhook = checkout["webhook"]
    secrets["webhook signature"] = webhook["headers"]["X-Razorpay-Signature"]
    secrets["checkout signature"] = checkout["razorpay_signature"]
    delivered = await api.post("/api/payments/webhooks/razorpay", content=webhook["body"], headers=webhook["headers"])
    assert expect(delivered, 200)["status"] == "processed"
    verify = {k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    expect(await api.post("/api/payments/verify", json=verify, headers=auth), 200)
    forged = await api.post(
        "/api/payments/webhooks/razorpay",
        content=webhook["body"],
        headers={**webhook["headers"], "X-Razorpay-Signature": "f" * 64},
    )
    assert forged.status_code == 400

    async def delivered_messages() -> list[dict[str, Any]]:
        items = expect(await api.get(f"/api/notifications/{user_id}", headers=auth), 200)["items"]
        templates = {m["template"] for m in items if m["status"] != "queued"}
        return items if {"welcome", "enrolment_confirmation", "payment_receipt"} <= templates else []

    await until(delivered_messages, timeout=15, what="the journey's messages sent")
    expect(await api.post("/api/auth/logout", headers=auth), 204)
    assert (await api.get("/api/users/profile", headers=auth)).status_code == 401
    secrets |= key_files(data_dir)


async def test_no_secret_reaches_logs_or_spans(
    tmp_path: Path, logs: LogCapture, spans: InMemorySpanExporter, monkeypatch: Any
) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    secrets: dict[str, str] = {}
    async with running_platform(tmp_path, dispatcher_interval_seconds=0.2) as (platform, api):
        await seed_academy(platform.apps)
        await journey(api, tmp_path, secrets)
    log_text = logs.text()
    span_count, spans_text = span_text(spans)
    assert len(logs.lines()) > 50 and span_count > 50, "the journey was not observed at all"
    assert secrets["full email"].split("@")[1] in log_text, "the masked email should still name the domain"
    found = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        if secret
        for where, text in (("logs", log_text), ("spans", spans_text))
        if secret in text
    ]
    assert not found, "secrets in telemetry:\n" + "\n".join(found)
