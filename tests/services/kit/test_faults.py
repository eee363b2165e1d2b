"""Fault injection: off by default, guarded by a token, and measured like a real failure."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import SecretStr

from observability import ObservabilityMiddleware
from services.kit import errors
from services.kit.app import new_fastapi
from services.kit.faults import FaultBoard, FaultSpec, install_faults

TOKEN = "a-long-chaos-token"
AUTH = {"X-Chaos-Token": TOKEN}


def _settings(**overrides: object) -> SimpleNamespace:
    fields: dict[str, object] = {"service_name": "faulty", "chaos_enabled": True, "chaos_token": SecretStr(TOKEN)}
    fields.update(overrides)
    return SimpleNamespace(**fields)


def tiny_app(settings: SimpleNamespace) -> FastAPI:
    app = FastAPI()
    errors.install_problem_handlers(app)

    @app.get("/users/{user_id}")
    async def get_user(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    @app.post("/auth/login")
    async def login() -> dict[str, str]:
        return {"token": "t"}

    @app.get("/metrics")
    async def metrics() -> dict[str, str]:
        return {"metrics": "here"}

    # As the app factory does: observability outermost, faults installed after it (and still inside).
    app.add_middleware(ObservabilityMiddleware, service=settings.service_name, access_log=False)
    install_faults(app, settings)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = tiny_app(_settings())
    app.state.chaos_faults.rng = random.Random(7)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_nothing_is_installed_unless_chaos_is_enabled() -> None:
    for settings in (SimpleNamespace(service_name="plain"), _settings(chaos_enabled=False)):
        app = tiny_app(settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            assert (await http.get("/chaos/faults", headers=AUTH)).status_code == 404
            assert (await http.get("/users/1")).status_code == 200
        assert not hasattr(app.state, "chaos_faults")
        assert all(m.cls is ObservabilityMiddleware for m in app.user_middleware)


async def test_the_admin_api_wants_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/chaos/faults")).status_code == 401
    wrong = await client.put("/chaos/faults", headers={"X-Chaos-Token": "guess"}, json={"faults": []})
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert (await client.get("/chaos/faults", headers=AUTH)).json() == {"service": "faulty", "faults": []}


async def test_without_a_configured_token_the_admin_api_refuses_everyone() -> None:
    app = tiny_app(_settings(chaos_token=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get("/chaos/faults", headers=AUTH)
    assert response.status_code == 401 and "CHAOS_TOKEN" in response.json()["detail"]


async def test_an_error_fault_fails_only_its_routes_and_methods(client: httpx.AsyncClient) -> None:
    fault = {"kind": "error", "routes": ["/users/{user_id}"], "methods": ["get"], "status": 502}
    listed = (await client.put("/chaos/faults", headers=AUTH, json={"faults": [fault]})).json()
    assert listed["faults"][0]["methods"] == ["GET"] and listed["faults"][0]["id"]

    failed = await client.get("/users/42")
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["type"].endswith("/chaos-fault") and failed.json()["service"] == "faulty"
    assert (await client.post("/auth/login")).status_code == 200
    assert (await client.get("/users/42/extra")).status_code == 404  # a template matches whole paths only

    assert (await client.delete("/chaos/faults", headers=AUTH)).json()["faults"] == []
    assert (await client.get("/users/42")).status_code == 200


async def test_a_share_of_requests_fails(client: httpx.AsyncClient) -> None:
    await client.put(
        "/chaos/faults", headers=AUTH, json={"faults": [{"kind": "error", "routes": ["/users"], "percent": 50}]}
    )
    statuses = [(await client.get(f"/users/{i}")).status_code for i in range(200)]
    assert set(statuses) == {200, 503}
    assert 70 <= statuses.count(503) <= 130


async def test_latency_delays_matching_requests_with_jitter(client: httpx.AsyncClient) -> None:
    fault = {"kind": "latency", "routes": ["/auth"], "methods": ["POST"], "latency_ms": 150, "jitter_ms": 50}
    await client.put("/chaos/faults", headers=AUTH, json={"faults": [fault]})
    started = time.perf_counter()
    assert (await client.post("/auth/login")).status_code == 200
    slow = time.perf_counter() - started
    started = time.perf_counter()
    assert (await client.get("/users/1")).status_code == 200
    fast = time.perf_counter() - started
    assert 0.15 <= slow < 1.0 and fast < 0.1


async def test_the_admin_api_and_metrics_are_never_faulted(client: httpx.AsyncClient) -> None:
    await client.put("/chaos/faults", headers=AUTH, json={"faults": [{"kind": "error", "routes": ["/"]}]})
    assert (await client.get("/users/1")).status_code == 503
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/chaos/faults", headers=AUTH)).status_code == 200


async def test_an_injected_fault_is_counted_and_marked_on_the_span(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    labels = {"service": "faulty", "kind": "error", "route": "/users/{user_id}"}
    red = {"service": "faulty", "route": "/users/{user_id}", "method": "GET", "status": "503"}
    before, red_before = (
        _sample("cerebrum_chaos_faults_injected_total", **labels),
        _sample("http_requests_total", **red),
    )
    await client.put(
        "/chaos/faults", headers=AUTH, json={"faults": [{"kind": "error", "routes": ["/users/{user_id}"]}]}
    )
    assert (await client.get("/users/7")).status_code == 503
    assert _sample("cerebrum_chaos_faults_injected_total", **labels) == before + 1
    # Counted in the RED metrics under the app's own route template, as a real failure would be.
    assert _sample("http_requests_total", **red) == red_before + 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /users/{user_id}"]
    (event,) = [e for e in span.events if e.name == "chaos.fault"]
    assert event.attributes is not None and event.attributes["chaos.fault.kind"] == "error"


async def test_latency_is_counted_too(client: httpx.AsyncClient) -> None:
    labels = {"service": "faulty", "kind": "latency", "route": "/auth/login"}
    before = _sample("cerebrum_chaos_faults_injected_total", **labels)
    await client.put("/chaos/faults", headers=AUTH, json={"faults": [{"kind": "latency", "routes": ["/auth/login"]}]})
    assert (await client.post("/auth/login")).status_code == 200
    assert _sample("cerebrum_chaos_faults_injected_total", **labels) == before + 1


def test_a_fault_expires_by_itself() -> None:
    now = [100.0]
    board = FaultBoard(service="faulty", token=TOKEN, clock=lambda: now[0])
    board.replace([FaultSpec(kind="error", expires_after_seconds=5)])
    assert board.listing().faults[0].expires_in_seconds == 5
    now[0] = 106.0
    assert board.active() == () and board.listing().faults == []


async def test_bad_fault_specs_are_refused(client: httpx.AsyncClient) -> None:
    for fault in ({"kind": "error", "routes": ["users"]}, {"kind": "error", "percent": 120}, {"kind": "boom"}):
        assert (await client.put("/chaos/faults", headers=AUTH, json={"faults": [fault]})).status_code == 422


def test_installing_twice_changes_nothing() -> None:
    settings = _settings()
    app = tiny_app(settings)
    board = app.state.chaos_faults
    assert install_faults(app, settings) is board
    assert sum(1 for m in app.user_middleware if m.cls is not ObservabilityMiddleware) == 1


async def test_an_injected_error_on_an_included_router_keeps_its_route(spans: InMemorySpanExporter) -> None:
    # As every service is built: its routes come in through include_router, not on the app itself.
    router = APIRouter()

    @router.get("/questions/random")
    async def random_questions() -> dict[str, str]:
        return {"question": "q"}

    app = new_fastapi()  # as the app factory makes it: FastAPI's own spans off
    errors.install_problem_handlers(app)
    app.include_router(router)
    app.add_middleware(ObservabilityMiddleware, service="faulty", access_log=False)
    install_faults(app, _settings())
    red = {"service": "faulty", "route": "/questions/random", "method": "GET", "status": "503"}
    before = _sample("http_requests_total", **red)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        fault = {"kind": "error", "routes": ["/questions/random"]}
        await http.put("/chaos/faults", headers=AUTH, json={"faults": [fault]})
        spans.clear()
        assert (await http.get("/questions/random")).status_code == 503

    assert _sample("http_requests_total", **red) == before + 1
    (span,) = spans.get_finished_spans()
    assert span.name == "GET /questions/random"
    assert span.attributes is not None and span.attributes["http.route"] == "/questions/random"
