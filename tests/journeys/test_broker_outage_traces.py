"""A student enrols and pays while the broker is down: what the traces of those requests show.

The embedded platform runs on a RabbitMQ node of this test's own (the machine's broker is shared
with other test runs and stays up). The requests succeed, as the outbox takes their events; each
relay attempt the broker refuses is an ERROR publish span in the request's trace, the attempt
after the broker is back a successful one, and every consumer's span is a child of that one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cerebrum.demo import seed_academy
from cerebrum.platform import Platform
from chaos.broker import PrivateBroker
from tests.journeys.conftest import serving

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    node = PrivateBroker()
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def platform(
    broker: PrivateBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    overrides = {"data_dir": tmp_path, "rabbitmq_url": f"amqp://guest:guest@127.0.0.1:{broker.port}/%2F"}
    async with serving(monkeypatch, overrides) as running:
        yield running


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f}s"
        await asyncio.sleep(0.2)


def _trace_id(response: httpx.Response) -> int:
    return int(response.headers["traceresponse"].split("-")[1], 16)


def _publishes(spans: InMemorySpanExporter, trace_id: int, event_type: str) -> list[ReadableSpan]:
    found = [
        s
        for s in spans.get_finished_spans()
        if s.name == f"{event_type} publish" and s.context is not None and s.context.trace_id == trace_id
    ]
    return sorted(found, key=lambda s: s.start_time or 0)


def _failed(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.status.status_code is StatusCode.ERROR]


def _assert_failed_then_published(publishes: list[ReadableSpan]) -> ReadableSpan:
    """The attempts of one event: refused ones (ERROR), then exactly one that worked, last."""
    *refused, published = publishes
    assert len(refused) >= 2, [(s.name, s.status.status_code) for s in publishes]
    for attempt in refused:
        assert attempt.kind is SpanKind.PRODUCER
        assert attempt.status.status_code is StatusCode.ERROR
        assert attempt.attributes is not None and attempt.attributes["error.type"]
        assert [e.name for e in attempt.events] == ["exception"]
    assert published.kind is SpanKind.PRODUCER
    assert published.status.status_code is not StatusCode.ERROR
    assert {s.attributes["messaging.message.id"] for s in publishes if s.attributes} == {
        published.attributes["messaging.message.id"] if published.attributes else None
    }, "every attempt is of the same event"
    # Every attempt is a child of the same span of the request that recorded the event.
    assert len({s.parent.span_id for s in publishes if s.parent is not None}) == 1
    assert all(s.parent is not None for s in publishes)
    return published


def _consumers(spans: InMemorySpanExporter, trace_id: int, event_type: str) -> dict[str, ReadableSpan]:
    """The consumer spans of one event in a trace, by the service that consumed it."""
    return {
        str((s.attributes or {})["cerebrum.service"]): s
        for s in spans.get_finished_spans()
        if s.name == f"{event_type} process" and s.context is not None and s.context.trace_id == trace_id
    }


async def test_enrolling_and_paying_during_a_broker_outage_shows_failed_publishes_then_the_one_the_consumers_follow(
    platform: tuple[Platform, httpx.AsyncClient], broker: PrivateBroker, spans: InMemorySpanExporter
) -> None:
    running, api = platform
    await seed_academy(running.apps)
    body = {"email": "outage@example.com", "password": "Golgi-Apparatus-7", "full_name": "Outage Student"}
    user_id = (await api.post("/api/auth/register", json=body)).json()["id"]
    login = await api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    course = (await api.get("/api/courses")).json()["items"][0]

    async def notified() -> set[str]:
        items = (await api.get(f"/api/notifications/{user_id}", headers=bearer)).json()["items"]
        return {m["template"] for m in items}

    async def welcomed() -> bool:
        return "welcome" in await notified()

    await _until(welcomed, "the welcome notification (the bus working before the outage)")
    spans.clear()

    await asyncio.to_thread(broker.ctl, "stop_app")  # this test's own node
    try:
        enrolled = await api.post("/api/enrollments", json={"course_id": course["id"]}, headers=bearer)
        assert enrolled.status_code == 201, enrolled.text
        enrollment = enrolled.json()
        checkout = await api.post(
            "/api/payments/sandbox/checkout", json={"order_id": enrollment["order"]["order_id"]}, headers=bearer
        )
        assert checkout.status_code == 200, checkout.text
        verify = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        paid = await api.post("/api/payments/verify", json=verify, headers=bearer)
        assert paid.status_code == 200, paid.text
        enrol_trace, pay_trace = _trace_id(enrolled), _trace_id(paid)

        async def refused_twice() -> bool:
            return (
                len(_failed(_publishes(spans, enrol_trace, "enrollment.created"))) >= 2
                and len(_failed(_publishes(spans, pay_trace, "payment.succeeded"))) >= 2
            )

        await _until(refused_twice, "two refused publish attempts of each event", timeout=20)
    finally:
        await asyncio.to_thread(broker.ctl, "start_app")

    async def confirmed_and_receipted() -> bool:
        status = await api.get(f"/api/enrollments/{enrollment['enrollment_id']}/status", headers=bearer)
        return status.json()["status"] == "confirmed" and {"payment_receipt", "enrolment_confirmation"} <= (
            await notified()
        )

    await _until(confirmed_and_receipted, "the enrolment confirmed and the receipt sent once the broker was back")

    async def consumed() -> bool:
        return set(_consumers(spans, enrol_trace, "enrollment.created")) == {"analytics"} and set(
            _consumers(spans, pay_trace, "payment.succeeded")
        ) == {"analytics", "communication", "enrollments"}

    await _until(consumed, "each consumer's span of payment.succeeded", timeout=10)

    created = _assert_failed_then_published(_publishes(spans, enrol_trace, "enrollment.created"))
    succeeded = _assert_failed_then_published(_publishes(spans, pay_trace, "payment.succeeded"))
    assert created.context is not None and succeeded.context is not None
    (analytics,) = _consumers(spans, enrol_trace, "enrollment.created").values()
    assert analytics.kind is SpanKind.CONSUMER
    assert analytics.parent is not None and analytics.parent.span_id == created.context.span_id
    for service, consumer in _consumers(spans, pay_trace, "payment.succeeded").items():
        assert consumer.kind is SpanKind.CONSUMER
        assert consumer.parent is not None and consumer.parent.span_id == succeeded.context.span_id, service
