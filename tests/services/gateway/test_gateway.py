"""The gateway on the real PostgreSQL and Redis, in front of fake services and a fake monolith."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.conftest import free_port
from tests.services.gateway.conftest import GatewayFactory

pytestmark = pytest.mark.integration


async def test_routes_by_prefix_and_strips_it(gateway: GatewayFactory) -> None:
    gw = await gateway(with_monolith=False)
    response = await gw.client.get("/api/courses/search?q=genetics")
    assert response.status_code == 200
    assert response.json()["path"] == "/courses/search" and response.json()["query"] == "q=genetics"
    assert response.headers["x-served-by"] == "service"
    assert (await gw.client.get("/api/unknown/thing")).status_code == 404


async def test_private_routes_need_a_token_at_the_edge(gateway: GatewayFactory) -> None:
    gw = await gateway()
    response = await gw.client.get("/api/enrollments/student/1")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert gw.service.calls == [] and gw.monolith.calls == [], "refused before any upstream is called"
    forged = await gw.client.get("/api/enrollments/student/1", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401


async def test_the_verified_identity_is_passed_on_and_a_spoofed_one_dropped(gateway: GatewayFactory) -> None:
    gw = await gateway(with_monolith=False)
    user = uuid.uuid4()
    headers = {**gw.token(user_id=user), "X-User-Id": "someone-else", "X-User-Role": "admin"}
    body = (await gw.client.get("/api/enrollments/student/me", headers=headers)).json()
    assert body["user"] == str(user) and body["role"] == "student"
    anonymous = (await gw.client.get("/api/courses", headers={"X-User-Role": "admin"})).json()
    assert anonymous["role"] is None


async def test_a_weight_of_25_sends_about_a_quarter_of_students_and_each_stays_put(gateway: GatewayFactory) -> None:
    gw = await gateway()
    admin = gw.token(role="admin")
    assert (await gw.client.put("/gateway/weights/courses", json={"weight": 25}, headers=admin)).status_code == 200
    sides: dict[uuid.UUID, set[str]] = {}
    for _ in range(400):
        user = uuid.uuid4()
        for _ in range(2):
            response = await gw.client.get("/api/courses", headers=gw.token(user_id=user))
            sides.setdefault(user, set()).add(response.headers["x-served-by"])
    assert all(len(s) == 1 for s in sides.values()), "a student never bounces between the two sides"
    share = Counter(next(iter(s)) for s in sides.values())["service"] / len(sides)
    assert 0.18 <= share <= 0.32, share
    other = await gw.client.get("/api/questions/random", headers=gw.token())
    assert other.headers["x-served-by"] == "monolith", "other prefixes stay on the monolith"
    served = REGISTRY.get_sample_value(
        "cerebrum_gateway_requests_total", {"prefix": "courses", "side": "service", "status": "200"}
    )
    assert served is not None and served >= share * 800 - 1


async def test_weights_are_admin_only_validated_and_persisted(gateway: GatewayFactory) -> None:
    gw = await gateway()
    assert (await gw.client.put("/gateway/weights/courses", json={"weight": 50}, headers=gw.token())).status_code == 403
    assert (await gw.client.put("/gateway/weights/courses", json={"weight": 50})).status_code == 401
    admin = gw.token(role="admin")
    bad = await gw.client.put("/gateway/weights/courses", json={"weight": 150}, headers=admin)
    assert bad.status_code == 422
    assert (await gw.client.put("/gateway/weights/nope", json={"weight": 5}, headers=admin)).status_code == 404
    await gw.client.put("/gateway/weights/courses", json={"weight": 10}, headers=admin)
    replica = await gateway()  # another gateway on the same database
    weights = (await replica.client.get("/gateway/weights", headers=admin)).json()["weights"]
    assert weights["courses"] == 10 and weights["users"] == 0


async def test_rate_limit_answers_429_with_headers(gateway: GatewayFactory) -> None:
    gw = await gateway(rate_limits="5/minute;100/hour", with_monolith=False)
    responses = [await gw.client.get("/api/courses") for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert responses[0].headers["ratelimit-limit"] == "5" and responses[0].headers["ratelimit-remaining"] == "4"
    assert int(responses[5].headers["retry-after"]) >= 1
    assert len(gw.service.calls) == 5


async def test_redis_down_keeps_serving_with_a_local_limit_and_says_so(gateway: GatewayFactory) -> None:
    before = REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", {"service": "gateway"}) or 0
    gw = await gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0", with_monolith=False, rate_limits="3/minute")
    statuses = [(await gw.client.get("/api/courses")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], "the local limit still holds"
    after = REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", {"service": "gateway"})
    assert after is not None and after >= before + 4


async def test_an_unreachable_upstream_is_a_502_naming_it(pg_schema: str, redis_prefix: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.apps import real_servers, running

    settings = GatewaySettings(
        **real_servers(pg_schema, redis_prefix, tmp_path), upstreams={"courses": f"http://127.0.0.1:{free_port()}"}
    )
    async with running(create_app(settings)) as client:
        response = await client.get("/api/courses")
    assert response.status_code == 502
    assert response.json()["upstream"] == "courses"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_slow_upstream_is_a_504(gateway: GatewayFactory) -> None:
    gw = await gateway(with_monolith=False, timeout_seconds=0.2)
    gw.service.delay = 1.0
    response = await gw.client.get("/api/courses")
    assert response.status_code == 504 and response.json()["upstream"] == "courses"


async def test_both_rate_limits_are_counted_in_redis_without_a_round_trip_per_request(
    gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.asyncio.connection import AbstractConnection

    gw = await gateway(with_monolith=False)
    limiter = gw.app.state.gateway.limiter
    limiter.flush_seconds = 60.0  # the batch goes when asked, below
    headers = gw.token() | {"Cache-Control": "no-cache"}
    first = await gw.client.get("/api/courses", headers=headers)
    assert first.status_code == 200 and first.headers["ratelimit-remaining"] == "999"
    sent = [0]
    original = AbstractConnection.send_packed_command

    async def counted(self, command, check_health=True):  # type: ignore[no-untyped-def]
        if "revocations:" not in (self.client_name or ""):  # each service's sign-out subscription aside
            sent[0] += 1
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    responses = [await gw.client.get("/api/courses", headers=headers) for _ in range(5)]
    assert sent[0] == 0, "Redis's first decision stands for the next five"
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["998", "997", "996", "995", "994"]
    assert all(r.headers["ratelimit-limit"] == "1000" for r in responses)
    assert all(0 < int(r.headers["ratelimit-reset"]) <= 60 for r in responses)
    await limiter.flush()
    assert sent[0] <= 2, "their five hits of both limits went to Redis together"
    limiter._known.clear()  # ask Redis again: it counted all six
    asked = await gw.client.get("/api/courses", headers=headers)
    assert asked.headers["ratelimit-remaining"] == "993"


async def test_a_verified_token_is_refused_once_it_expires_and_a_forged_one_every_time(gateway: GatewayFactory) -> None:
    import asyncio
    import time

    from services.kit.auth import TokenIssuer

    gw = await gateway(with_monolith=False)
    user = uuid.uuid4()
    token = TokenIssuer(gw.settings).issue(user_id=user, role="student", session_id=None, ttl=2)
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        response = await gw.client.get("/api/enrollments/student/me", headers=bearer)
        assert response.status_code == 200 and response.json()["user"] == str(user)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        forged = await gw.client.get("/api/enrollments/student/me", headers={"Authorization": f"Bearer {tampered}"})
        assert forged.status_code == 401
    expiry = int(time.time()) + 2
    await asyncio.sleep(max(0.0, expiry - time.time()) + 0.1)
    expired = await gw.client.get("/api/enrollments/student/me", headers=bearer)
    assert expired.status_code == 401
    anonymous = await gw.client.get("/api/courses", headers=bearer)
    assert anonymous.status_code == 200 and anonymous.json()["user"] is None, "an expired token is no identity"


async def test_forwarding_leaves_other_methods_and_the_gateway_s_own_routes_alone(gateway: GatewayFactory) -> None:
    gw = await gateway(with_monolith=False)
    assert (await gw.client.request("TRACE", "/api/courses")).status_code == 405
    assert gw.service.calls == [], "a method the gateway does not forward reaches no service"
    weights = await gw.client.get("/gateway/weights", headers=gw.token(role="admin"))
    assert weights.status_code == 200 and "weights" in weights.json()
    forwarded = await gw.client.delete("/api/courses/1", headers=gw.token(role="admin"))
    assert forwarded.status_code == 200 and forwarded.json()["path"] == "/courses/1"
