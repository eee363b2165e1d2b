"""The resilient service client against a real HTTP upstream on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from aiohttp import web
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client import REGISTRY

from services.kit.errors import DependencyUnavailable
from services.kit.http import AiohttpTransport, AsgiTransport, ServiceClient, breaker_factory
from tests.conftest import free_port


@dataclass
class Upstream:
    url: str
    hits: list[web.Request] = field(default_factory=list)
    status: int = 200


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    port = free_port()
    state = Upstream(f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        state.hits.append(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = web.json_response({"path": request.path, "headers": headers}, status=state.status)
        if request.path == "/sign-in":
            reply.set_cookie("session", "first-callers-secret")
        return reply

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport()
    yield transport
    await transport.close()


def _client(
    url: str, transport: AiohttpTransport | AsgiTransport, service: str = "probe", threshold: int = 3, retries: int = 2
) -> ServiceClient:
    return ServiceClient(
        service=service,
        upstream="courses",
        base_url=url,
        transport=transport,
        breakers=breaker_factory(service, threshold=threshold, ttl=30),
        timeout=2,
        retries=retries,
    )


async def test_a_call_carries_trace_context_request_id_and_token(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    client = _client(upstream.url, transport)
    structlog.contextvars.bind_contextvars(request_id="req-42")
    try:
        with trace.get_tracer("test").start_as_current_span("saga step") as span:
            reply = await client.request("GET", "/courses/1", token="tok")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    sent = reply.json()["headers"]
    assert reply.status == 200
    assert f"{span.get_span_context().trace_id:032x}" in sent["traceparent"]
    assert sent["x-request-id"] == "req-42" and sent["authorization"] == "Bearer tok"


async def test_a_sampled_call_is_one_client_span_and_an_unsampled_one_none(
    upstream: Upstream, transport: AiohttpTransport, spans: InMemorySpanExporter
) -> None:
    client = _client(upstream.url, transport)
    with trace.get_tracer("test").start_as_current_span("saga step") as step:
        sampled = (await client.request("GET", "/courses/1?topic=genetics")).json()["headers"]
    calls = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT]
    assert len(calls) == 1, [s.name for s in calls]  # the call's own span, not one more from aiohttp's hooks
    call = calls[0]
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
    assert call.attributes is not None
    assert call.attributes["peer.service"] == "courses" and call.attributes["http.response.status_code"] == 200
    assert call.attributes["url.full"] == f"{upstream.url}/courses/1?topic=genetics"
    assert f"{call.context.span_id:016x}" in sampled["traceparent"]  # the upstream continues under the call

    spans.clear()
    unsampled = SpanContext(trace_id=0x5EED, span_id=0xCAFE, is_remote=True, trace_flags=TraceFlags(0))
    with trace.use_span(NonRecordingSpan(unsampled)):
        dropped = (await client.request("GET", "/courses/1")).json()["headers"]
    assert [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT] == []
    assert dropped["traceparent"] == f"00-{0x5EED:032x}-{0xCAFE:016x}-00"  # the trace still goes on, unsampled


async def test_a_cookie_one_reply_sets_never_rides_on_the_next_call(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    # By name, as upstreams are in a deployment: aiohttp's jar keeps no cookie from an IP address.
    client = _client(upstream.url.replace("127.0.0.1", "localhost"), transport, service="cookie-probe")
    signed_in = await client.request("POST", "/sign-in", json={}, token="first")
    assert "set-cookie" in {name.lower() for name in signed_in.headers}
    second = (await client.request("GET", "/courses/1", token="second")).json()["headers"]
    assert "cookie" not in second  # one session serves every caller: it keeps no cookie jar


async def test_5xx_on_an_idempotent_call_is_retried_but_a_post_is_not(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    upstream.status = 503
    client = _client(upstream.url, transport, service="retry-probe", threshold=10, retries=2)
    with pytest.raises(DependencyUnavailable):
        await client.request("GET", "/courses/1")
    assert len(upstream.hits) == 3
    upstream.hits.clear()
    with pytest.raises(DependencyUnavailable):
        await client.request("POST", "/courses/1/seats/reserve", json={})
    assert len(upstream.hits) == 1


async def test_4xx_is_an_answer_not_a_failure(upstream: Upstream, transport: AiohttpTransport) -> None:
    upstream.status = 409
    reply = await _client(upstream.url, transport, service="answer-probe").request("POST", "/x", json={})
    assert reply.status == 409


async def test_an_unreachable_upstream_is_a_fast_503_naming_it(transport: AiohttpTransport) -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", transport, service="down-probe", retries=0)
    started = time.perf_counter()
    with pytest.raises(DependencyUnavailable) as caught:
        await client.request("GET", "/courses/1")
    assert caught.value.extensions["dependency"] == "courses"
    assert time.perf_counter() - started < 1.0


async def test_the_breaker_opens_and_then_answers_without_calling(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    upstream.status = 500
    client = _client(upstream.url, transport, service="breaker-probe", retries=0)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await client.request("POST", "/boom", json={})
    hits = len(upstream.hits)
    with pytest.raises(DependencyUnavailable, match="circuit open"):
        await client.request("POST", "/boom", json={})
    assert len(upstream.hits) == hits, "an open breaker does not call the upstream"
    state = REGISTRY.get_sample_value(
        "cerebrum_circuit_breaker_state", {"service": "breaker-probe", "upstream": "courses"}
    )
    assert state == 2


async def test_the_in_process_transport_calls_an_asgi_app_directly() -> None:
    app = FastAPI()

    @app.post("/courses/{course_id}/seats/reserve")
    async def reserve(course_id: str, request: Request) -> dict[str, object]:
        return {"course": course_id, "body": await request.json(), "traceparent": request.headers.get("traceparent")}

    client = _client("http://embedded", AsgiTransport(lambda: app), service="asgi-probe")
    with trace.get_tracer("test").start_as_current_span("saga"):
        reply = await client.request("POST", "/courses/c1/seats/reserve", json={"reservation_id": "r1"})
    body = reply.json()
    assert reply.status == 200 and body["course"] == "c1" and body["body"] == {"reservation_id": "r1"}
    assert body["traceparent"]


async def test_an_in_process_call_cut_off_as_its_answer_arrives_stays_cut_off() -> None:
    # A request whose caller is gone (a client hanging up, a process stopping) must stop there,
    # even when the upstream's answer lands in the same turn of the loop: carrying on would run
    # the rest of the request for nobody, up to its next call's full timeout.
    answered = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await answered.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    caller = asyncio.create_task(AsgiTransport(lambda: app).send("GET", "http://embedded/x", {}, None, 60))
    await asyncio.sleep(0.01)  # the caller waits for the app
    answered.set()
    await asyncio.sleep(0)  # the app answers
    caller.cancel()

    with pytest.raises(asyncio.CancelledError):
        await caller
