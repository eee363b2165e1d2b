"""The embedded platform used the way students, services and a Redis outage use it, then scraped.

Run in a process of its own (``python -m tests.observability_as_code.usage OUT.json``): the
process's metrics registry then holds this platform's series only, so a series carrying
``service="x"``, or a metric only x's code declares, is something x emitted. Each thing a service
has is used at least once, failures included: an enrolment paid for (calls between services,
seats, the saga, every service's outbox and consumers), a client's learning event, an event no
handler can read (consumer retries and a dead letter), and requests while Redis is down
(sessions let through unchecked).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY

from cerebrum.platform import Platform
from cerebrum.runner import build_platform
from services.kit.cache import embedded_server
from services.kit.events.contracts import OutgoingMessage, encode
from tests.apps import FAST_HASHING
from tests.observability_as_code.emitted import student_journey

# One read per service that looks the caller's session up in Redis ({user} is the caller's id).
AUTHENTICATED_READS = {
    "users": "/api/users/profile",
    "courses": "/api/courses",
    "enrollments": "/api/enrollments/student/{user}",
    "payments": "/api/payments/history/{user}",
    "analytics": "/api/analytics/dashboard/{user}",
    "communication": "/api/notifications/{user}",
    "assessments": "/api/leaderboard/genetics",
}


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def enrol_and_pay(api: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A student enrols, pays, learns a lesson and sends a learning event; returns their id and bearer."""
    account = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "Mendelian-Ratio-3", "full_name": "P Aid"}
    user_id = (await api.post("/api/auth/register", json=account)).json()["id"]
    token = (await api.post("/api/auth/login", json={k: account[k] for k in ("email", "password")})).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    course = (await api.get("/api/courses")).json()["items"][0]
    enrolled = await api.post("/api/enrollments", json={"course_id": course["id"]}, headers=bearer)
    assert enrolled.status_code == 201, enrolled.text
    enrollment = enrolled.json()
    order = enrollment["order"]["order_id"]
    checkout = (await api.post("/api/payments/sandbox/checkout", json={"order_id": order}, headers=bearer)).json()
    verify = {k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    assert (await api.post("/api/payments/verify", json=verify, headers=bearer)).status_code == 200

    async def confirmed() -> bool:
        status = await api.get(f"/api/enrollments/{enrollment['enrollment_id']}/status", headers=bearer)
        return bool(status.json()["status"] == "confirmed")

    await until(confirmed, "payment.succeeded to confirm the enrolment")
    lesson = (await api.get(f"/api/courses/{course['id']}")).json()["lessons"][0]["id"]
    progress = await api.put(
        f"/api/enrollments/{enrollment['enrollment_id']}/progress",
        headers=bearer,
        json={"lesson_id": lesson, "completed": True, "time_spent_seconds": 600},
    )
    assert progress.status_code == 200, progress.text
    event = {
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "type": "lesson_viewed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "course_id": course["id"],
        "lesson_id": lesson,
        "properties": {"seconds": 30},
    }
    sent = await api.post("/api/analytics/events", json={"events": [event]}, headers=bearer)
    assert sent.status_code == 202, sent.text
    unsigned = {"x-razorpay-signature": "0"}  # a provider webhook that is not the provider's
    forged = await api.post("/api/payments/webhooks/razorpay", content=b'{"event": "x"}', headers=unsigned)
    assert forged.status_code == 400, forged.text
    return user_id, bearer


async def send_unreadable_events(platform: Platform) -> None:
    """Hands each consumer an event of a type it handles that its handler cannot read."""
    consumers = [app.state.kit.consumer for app in platform.apps.values() if app.state.kit.consumer is not None]
    bus = next(iter(platform.apps.values())).state.kit.bus
    messages = [
        OutgoingMessage(
            id=(event_id := uuid.uuid4()),
            type=consumer.routing_keys[0],
            body=encode(
                event_id=event_id,
                type_=consumer.routing_keys[0],
                source="test",
                occurred_at=datetime.now(UTC),
                data={},
            ),
            headers={},
        )
        for consumer in consumers
    ]
    # Each delivery retries with back-off before it dead-letters: all at once, not one by one.
    await asyncio.gather(*(bus.publish([message]) for message in messages))


async def read_while_redis_is_down(
    api: httpx.AsyncClient, data_dir: Path, user_id: str, bearer: dict[str, str]
) -> None:
    redis = embedded_server(str(data_dir))
    redis.connected = False
    try:
        for path in AUTHENTICATED_READS.values():
            await api.get(path.format(user=user_id), headers=bearer)
    finally:
        redis.connected = True


async def use(data_dir: Path) -> dict[str, Any]:
    """Uses every part of the platform once; returns its /metrics and what each service consumes."""
    platform = build_platform(overrides={"data_dir": data_dir, "environment": "test", **FAST_HASHING})
    async with platform.running():
        transport = httpx.ASGITransport(app=platform, client=("198.51.100.21", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://academy") as api:
            await student_journey(platform, api)
            user_id, bearer = await enrol_and_pay(api)
            await send_unreadable_events(platform)
            await read_while_redis_is_down(api, data_dir, user_id, bearer)

            async def analytics_took_broker_events() -> bool:
                labels = {"service": "analytics", "source": "broker", "outcome": "stored"}
                return bool(REGISTRY.get_sample_value("cerebrum_analytics_events_ingested_total", labels))

            await until(analytics_took_broker_events, "analytics to store events from the bus")
            exposition = await api.get("/metrics", headers={"accept": "application/openmetrics-text"})
            assert exposition.status_code == 200
            consumers = {
                name: bool(app.state.kit.consumer is not None)
                for name, app in platform.apps.items()
                if getattr(app.state, "kit", None) is not None
            }
            return {"exposition": exposition.text, "consumers": consumers}


def main(out: str) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory() as data_dir:
        result = asyncio.run(use(Path(data_dir)))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
