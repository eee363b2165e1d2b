"""Shadow traffic through the real gateway (PostgreSQL, Redis) in front of a fake monolith and service."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.shadow import ShadowMirror
from services.kit.auth import TokenIssuer
from services.kit.http import AsgiTransport
from slo.scoring import Verdict
from slo.shadow import judge
from tests.apps import real_servers, running

pytestmark = pytest.mark.integration
Answer = Callable[[str], dict[str, Any]]


def course(path: str) -> dict[str, Any]:
    """What both sides agree on for a course, plus what each call mints anew (noise)."""
    number = int(path.rsplit("/", 1)[-1])
    tags = ["genetics", "ecology", "botany"]
    random.shuffle(tags)  # a set, served in no fixed order
    return {
        "id": number,
        "title": f"Course {number}",
        "price": 4999,
        "tags": tags,
        "request_id": str(uuid.uuid4()),
        "served_at": datetime.now(UTC).isoformat(),
    }


def wrong_price(path: str) -> dict[str, Any]:
    """A candidate with one bug: odd-numbered courses come back at the wrong price."""
    answer = course(path)
    if answer["id"] % 2:
        answer["price"] = 5999
    return answer


@dataclass
class Upstream:
    answer: Answer = course
    hang: bool = False
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST"])
        async def serve(path: str, request: Request) -> JSONResponse:
            self.calls.append((request.method, "/" + path, dict(request.headers)))
            if self.hang:
                await asyncio.sleep(60)
            return JSONResponse(self.answer("/" + path))

        return app


@dataclass
class Shadowed:
    client: httpx.AsyncClient
    settings: GatewaySettings
    mirror: ShadowMirror
    monolith: Upstream
    service: Upstream

    def token(self, role: str = "student", user_id: uuid.UUID | None = None) -> dict[str, str]:
        token = TokenIssuer(self.settings).issue(user_id=user_id or uuid.uuid4(), role=role, session_id=None)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    async def share(self, percent: int, prefix: str = "courses") -> httpx.Response:
        return await self.client.put(
            f"/gateway/shadow/{prefix}", json={"percent": percent}, headers=self.token("admin")
        )

    async def report(self) -> dict[str, Any]:
        await self.mirror.drain()
        answer = await self.client.get("/gateway/shadow/report", headers=self.token("admin"))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
async def shadowed(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Gateways on the real PostgreSQL and Redis; every student is served by the monolith (weight 0)."""
    stack: list[Any] = []

    async def build(service: Upstream | None = None, **overrides: Any) -> Shadowed:
        monolith, service = Upstream(), service or Upstream()
        monolith_app, service_app = monolith.app(), service.app()
        settings = GatewaySettings(
            **{**real_servers(pg_schema, redis_prefix, tmp_path), "rate_limits": "100000/minute", **overrides}
        )
        app = create_app(
            settings,
            transports={name: AsgiTransport(lambda: service_app) for name in settings.upstreams},
            monolith=AsgiTransport(lambda: monolith_app),
        )
        context = running(app)
        client = await context.__aenter__()
        stack.append(context)
        return Shadowed(client, settings, app.state.shadow, monolith, service)

    yield build
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_wrong_candidate_is_caught_and_the_gate_names_its_route_and_field(shadowed: Any) -> None:
    gw: Shadowed = await shadowed(Upstream(answer=wrong_price))
    before = _count("cerebrum_shadow_diffs_total", route="courses", field_class="body")
    assert (await gw.share(100)).status_code == 200
    student = gw.token()
    for number in range(40):
        answer = await gw.client.get(f"/api/courses/{number}", headers=student)
        assert answer.status_code == 200 and answer.headers["x-served-by"] == "monolith"

    report = await gw.report()
    [route] = [r for r in report["routes"] if r["route"] == "GET /courses/{id}"]
    assert route["compared"] == 40 and route["differing"] == 20, route
    assert route["top_fields"][0]["field"] == "body.price"
    assert route["top_fields"][0]["example"] == {"monolith": 4999, "service": 5999}
    assert {"body.request_id", "body.served_at"} <= set(route["noise"]) and route["unordered"] == ["body.tags"]
    assert _count("cerebrum_shadow_diffs_total", route="courses", field_class="body") == before + 20

    verdict = judge(report, prefix="courses")
    assert verdict.verdict is Verdict.FAIL
    assert "GET /courses/{id}" in verdict.detail and "body.price" in verdict.detail and "50.0%" in verdict.detail


async def test_answers_that_differ_only_in_ids_timestamps_and_order_are_noise(shadowed: Any) -> None:
    gw: Shadowed = await shadowed(Upstream(answer=course))
    await gw.share(100)
    for number in range(30):
        assert (await gw.client.get(f"/api/courses/{number}", headers=gw.token())).status_code == 200

    [route] = [r for r in (await gw.report())["routes"] if r["route"] == "GET /courses/{id}"]
    assert route["compared"] == 30 and route["differing"] == 0 and route["top_fields"] == [], route
    assert {"body.request_id", "body.served_at"} <= set(route["noise"]) and route["unordered"] == ["body.tags"]
    assert route["learned_from"] >= 10, "the monolith was asked twice to learn the route's noise"
    assert judge(await gw.report(), prefix="courses").verdict is Verdict.PASS


async def test_a_mirror_carries_identity_and_the_shadow_mark_and_a_post_is_never_mirrored(shadowed: Any) -> None:
    gw: Shadowed = await shadowed()
    await gw.share(100)
    user = uuid.uuid4()
    spoofed = {**gw.token(user_id=user), "X-Cerebrum-Shadow": "1"}
    assert (await gw.client.get("/api/courses/7", headers=spoofed)).status_code == 200
    for _ in range(5):
        assert (await gw.client.post("/api/courses/7", json={"seats": 1}, headers=gw.token())).status_code == 200
    await gw.mirror.drain()

    served = [headers for method, _, headers in gw.monolith.calls if method == "GET"]
    assert "x-cerebrum-shadow" not in served[0], "a caller cannot mark its own request as shadow traffic"
    assert [(m, p) for m, p, _ in gw.service.calls] == [("GET", "/courses/7")], "the POSTs were never mirrored"
    mirrored = gw.service.calls[0][2]
    assert mirrored["x-cerebrum-shadow"] == "1" and mirrored["x-user-id"] == str(user)
    assert mirrored["x-user-role"] == "student"
    assert len([c for c in gw.monolith.calls if c[0] == "POST"]) == 5


async def test_the_users_latency_holds_when_the_mirror_target_hangs(shadowed: Any) -> None:
    gw: Shadowed = await shadowed(
        Upstream(hang=True), shadow_timeout_seconds=0.5, shadow_queue_size=1, shadow_workers=1
    )
    student = gw.token()
    await gw.share(100, prefix="courses")  # curriculum, served by the same sides, is not mirrored
    dropped_before = _count("cerebrum_shadow_requests_total", route="courses", outcome="dropped")
    mirrored: list[float] = []
    plain: list[float] = []
    for number in range(50):  # interleaved, so both see the same load on the machine
        for prefix, seconds in (("courses", mirrored), ("curriculum", plain)):
            started = time.perf_counter()
            assert (await gw.client.get(f"/api/{prefix}/{number}", headers=student)).status_code == 200
            seconds.append(time.perf_counter() - started)
    # Had a user waited for the mirror, every mirrored request would take the 0.5 s timeout; a
    # stray slow one is the shared machine (the unmirrored ones have them too).
    assert statistics.quantiles(mirrored, n=10)[-1] < 0.5, "no user request waited for the hanging side"
    assert statistics.median(mirrored[10:]) < statistics.median(plain[10:]) + 0.005, (plain, mirrored)

    report = await gw.report()
    [route] = [r for r in report["routes"] if r["route"] == "GET /courses/{id}"]
    dropped = _count("cerebrum_shadow_requests_total", route="courses", outcome="dropped") - dropped_before
    assert route["compared"] == 0 and route["failed"] + dropped == 50, (route, dropped)
    assert dropped > 0, "a full queue drops mirrors instead of holding requests"
    for number in range(8):  # five timeouts open the shadow breaker: then the hanging side costs nothing
        if _count("cerebrum_shadow_requests_total", route="courses", outcome="breaker_open"):
            break
        await gw.client.get(f"/api/courses/{number}", headers=student)
        await gw.mirror.drain()
    assert _count("cerebrum_shadow_requests_total", route="courses", outcome="breaker_open") > 0
    assert _count("cerebrum_circuit_breaker_state", service="gateway-shadow", upstream="courses") == 2
    assert not [c for c in gw.monolith.calls if c[2].get("x-cerebrum-shadow")], (
        "a down candidate costs the primary nothing"
    )


async def test_shares_are_admin_only_validated_and_persisted(shadowed: Any) -> None:
    gw: Shadowed = await shadowed()
    student, admin = gw.token(), gw.token("admin")
    assert (await gw.client.put("/gateway/shadow/courses", json={"percent": 5}, headers=student)).status_code == 403
    assert (await gw.client.put("/gateway/shadow/courses", json={"percent": 5})).status_code == 401
    assert (await gw.share(101)).status_code == 422
    assert (
        await gw.client.put("/gateway/shadow/courses", json={"percent": 5, "x": 1}, headers=admin)
    ).status_code == 422
    assert (await gw.share(5, prefix="nope")).status_code == 404
    assert (await gw.share(25)).json() == {"prefix": "courses", "percent": 25}
    replica: Shadowed = await shadowed()
    shares = (await replica.client.get("/gateway/shadow", headers=admin)).json()["shares"]
    assert shares["courses"] == 25 and shares["users"] == 0


async def test_a_route_declared_read_only_is_mirrored_whatever_its_method(shadowed: Any, tmp_path: Path) -> None:
    rules = tmp_path / "shadow.yaml"
    rules.write_text('routes:\n  "POST /courses/search/{id}":\n    read_only: true\n')
    gw: Shadowed = await shadowed(shadow_rules_file=rules)
    await gw.share(100)
    assert (await gw.client.post("/api/courses/search/1", json={"q": "cells"}, headers=gw.token())).status_code == 200
    assert (await gw.client.post("/api/courses/enrol/2", json={"seats": 1}, headers=gw.token())).status_code == 200
    await gw.mirror.drain()
    assert [(m, p) for m, p, _ in gw.service.calls] == [("POST", "/courses/search/1")]
