"""Reads kept at the gateway: the real gateway in front of the real courses and users services, all
on the real PostgreSQL and Redis. A copy answers until its generation changes, and a change made
through the service shows on the very next read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.courses import service as courses_service
from services.courses.app import create_app as create_courses
from services.courses.settings import CoursesSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.proxy import Gateway
from services.gateway.settings import GatewaySettings
from services.kit.auth import TokenIssuer
from services.kit.edge import generation_key
from services.kit.http import AsgiTransport, Reply, Transport
from services.kit.revocations import sign_out
from services.users.app import create_app as create_users
from services.users.settings import UsersSettings
from tests.apps import FAST_HASHING, PG_URL, REDIS_URL, real_servers, running
from tests.services.courses.conftest import course_body

pytestmark = pytest.mark.integration


class CountingTransport(AsgiTransport):
    """A service's app in-process, counting what reaches it."""

    def __init__(self, app: Callable[[], FastAPI]) -> None:
        super().__init__(app)
        self.calls: list[str] = []

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> Reply:
        self.calls.append(f"{method} {url}")
        return await super().send(method, url, headers, body, timeout)


@dataclass
class Edge:
    client: httpx.AsyncClient
    courses: FastAPI
    upstream: CountingTransport
    users: CountingTransport
    issuer: TokenIssuer

    settings: GatewaySettings
    gateway: Gateway

    async def reported(self, key: str) -> None:
        """Waits until the gateway has read Redis's report of a change to ``key`` (it forgets the value)."""
        tracked = self.gateway.tracked
        assert tracked is not None
        for _ in range(200):
            if tracked.known([key]) is None:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"Redis's report of {key} never reached the gateway")

    async def asked(self, path: str, headers: dict[str, str]) -> tuple[httpx.Response, int]:
        """A read, and how many calls to Redis the rate limit made for it (hits counted earlier without
        asking are sent first, so that they are not taken for this read's)."""
        limiter, calls = self.gateway.limiter, [0]
        await limiter.flush()
        limiter.flush_seconds = 60.0  # no batch of them goes during the read
        script = limiter._script

        async def counted(**kwargs: Any) -> Any:
            calls[0] += 1
            return await script(**kwargs)

        limiter._script, limiter._coalescer = counted, None
        try:
            return await self.client.get(path, headers=headers), calls[0]
        finally:
            limiter._script, limiter._coalescer = script, None

    def bearer(self, role: str = "student", session_id: str | None = None) -> dict[str, str]:
        token = self.issuer.issue(user_id=uuid.uuid4(), role=role, session_id=session_id)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def edge(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Builds a gateway in front of a courses and a users service, each of its own schema (dropped afterwards)."""
    opened: list[Any] = []
    schemas: list[str] = []

    async def build(**gateway_overrides: Any) -> Edge:
        schemas.extend(schema := (f"{pg_schema}_c{len(schemas)}", f"{pg_schema}_u{len(schemas)}"))
        courses = create_courses(CoursesSettings(**real_servers(schema[0], redis_prefix, tmp_path)))
        users = create_users(UsersSettings(**real_servers(schema[1], redis_prefix, tmp_path), **FAST_HASHING))
        upstream, to_users = CountingTransport(lambda: courses), CountingTransport(lambda: users)
        settings = GatewaySettings(**{**real_servers(pg_schema, redis_prefix, tmp_path), **gateway_overrides})
        transports: dict[str, Transport] = {name: upstream for name in settings.upstreams}
        gateway = create_gateway(settings, transports=transports | {"users": to_users})
        for app in (courses, users, gateway):
            context = running(app)
            client = await context.__aenter__()
            opened.append(context)
        tracked = gateway.state.gateway.tracked
        for _ in range(200):  # following Redis's changes from the start, as a running gateway does
            if tracked.live:
                break
            await asyncio.sleep(0.01)
        return Edge(client, courses, upstream, to_users, TokenIssuer(settings), settings, gateway.state.gateway)

    yield build
    for context in reversed(opened):
        await context.__aexit__(None, None, None)
    conn = await asyncpg.connect(PG_URL)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _titles(page: httpx.Response) -> dict[str, int]:
    return {item["title"]: item["seats_left"] for item in page.json()["items"]}


async def test_the_public_catalogue_is_served_from_the_gateway_until_it_changes(
    edge: Callable[..., Any], spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(courses_service, "SEAT_COUNTS_SHOWN_WITHIN_SECONDS", 0.3)
    e: Edge = await edge()
    admin, student = e.bearer("admin"), e.bearer()
    made = await e.client.post("/api/courses", json=course_body(title="Cell Biology", capacity=5), headers=admin)
    assert made.status_code == 201
    course = made.json()

    first = await e.client.get("/api/courses", headers=student)
    assert first.status_code == 200 and "x-cache" not in first.headers
    assert "x-edge-copy" not in first.headers, "the stamp between service and gateway stays inside"
    calls = len(e.upstream.calls)
    spans.clear()
    again = await e.client.get("/api/courses", headers=student)
    assert again.headers["x-cache"] == "hit" and again.json() == first.json()
    assert len(e.upstream.calls) == calls, "a hit never reaches the courses service"
    assert int(again.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    served = [s for s in spans.get_finished_spans() if (s.attributes or {}).get("cerebrum.edge_copy") == "hit"]
    assert served, "the request's span says it was answered from the gateway's copy"

    # Each change through the service shows on the very next read: a rename, a new course; a seat
    # taken, within the seconds the catalogue may show seats late.
    renamed = await e.client.put(f"/api/courses/{course['id']}", json={"title": "Cell Biology II"}, headers=admin)
    assert renamed.status_code == 200
    after = await e.client.get("/api/courses", headers=student)
    assert "x-cache" not in after.headers and _titles(after) == {"Cell Biology II": 5}
    hold = {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}
    reserve = await e.client.post(f"/api/courses/{course['id']}/seats/reserve", json=hold, headers=admin)
    assert reserve.status_code == 200
    late = await e.client.get("/api/courses", headers=student)
    assert late.headers["x-cache"] == "hit" and _titles(late) == {"Cell Biology II": 5}
    for _ in range(100):
        await asyncio.sleep(0.05)
        shown = await e.client.get("/api/courses", headers=student)
        if _titles(shown) == {"Cell Biology II": 4}:
            break
    assert "x-cache" not in shown.headers and _titles(shown) == {"Cell Biology II": 4}
    await e.client.post("/api/courses", json=course_body(title="Genetics"), headers=admin)
    assert set(_titles(await e.client.get("/api/courses", headers=student))) == {"Cell Biology II", "Genetics"}

    # Admins see drafts, never the students' copy; anonymous visitors get a copy of their own.
    await e.client.post("/api/courses", json=course_body(title="Zoology", is_published=False), headers=admin)
    await e.client.get("/api/courses", headers=student)
    assert "Zoology" not in _titles(await e.client.get("/api/courses", headers=student))
    assert "Zoology" in _titles(await e.client.get("/api/courses", headers=admin))
    assert "Zoology" in _titles(await e.client.get("/api/courses", headers=admin))
    anonymous = await e.client.get("/api/courses")
    assert "x-cache" not in anonymous.headers and "Zoology" not in _titles(anonymous)


async def test_a_course_page_copy_goes_when_its_generation_does(edge: Callable[..., Any]) -> None:
    e: Edge = await edge()
    admin, student = e.bearer("admin"), e.bearer()
    course = (await e.client.post("/api/courses", json=course_body(title="Ecology"), headers=admin)).json()
    url = f"/api/courses/{course['id']}"
    assert (await e.client.get(url, headers=student)).status_code == 200
    assert (await e.client.get(url, headers=student)).headers["x-cache"] == "hit"

    # A generation gone (a Redis restart, a flush) sends the read on: the copy is never trusted blind.
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        key = generation_key(e.courses.state.courses.cache.key("course", course["id"]), e.settings.redis_key_prefix)
        assert await redis.delete(key) == 1
    finally:
        await redis.aclose()
    await e.reported(key)  # Redis tells the gateway of the change; it trusts the generation no more
    calls = len(e.upstream.calls)
    gone = await e.client.get(url, headers=student)
    assert gone.status_code == 200 and "x-cache" not in gone.headers and len(e.upstream.calls) == calls + 1
    assert (await e.client.get(url, headers=student)).headers["x-cache"] == "hit"

    missing = f"/api/courses/{uuid.uuid4()}"
    assert (await e.client.get(missing, headers=student)).status_code == 404
    assert "x-cache" not in (await e.client.get(missing, headers=student)).headers, "only a 200 is kept"


async def test_a_client_that_asks_for_no_cache_is_answered_by_the_service(edge: Callable[..., Any]) -> None:
    e: Edge = await edge()
    admin, student = e.bearer("admin"), e.bearer()
    first, second = [
        (await e.client.post("/api/courses", json=course_body(title=title), headers=admin)).json()
        for title in ("Botany", "Zoology")
    ]
    url = f"/api/courses/{first['id']}"
    await e.client.get(url, headers=student)
    assert (await e.client.get(url, headers=student)).headers["x-cache"] == "hit"

    for directive in ({"Cache-Control": "no-cache"}, {"Pragma": "no-cache"}, {"Cache-Control": "max-age=0, No-Cache"}):
        calls = len(e.upstream.calls)
        fresh = await e.client.get(url, headers=student | directive)
        assert fresh.status_code == 200 and "x-cache" not in fresh.headers, directive
        assert len(e.upstream.calls) == calls + 1, f"{directive} reaches the courses service"
    assert (await e.client.get(url, headers=student)).headers["x-cache"] == "hit", "the service's answer is kept"

    # no-store: answered by the service, and nothing is kept of it.
    other = f"/api/courses/{second['id']}"
    unkept = await e.client.get(other, headers=student | {"Cache-Control": "no-store"})
    assert unkept.status_code == 200 and "x-cache" not in unkept.headers
    assert "x-cache" not in (await e.client.get(other, headers=student)).headers, "no-store kept no copy"
    assert (await e.client.get(other, headers=student)).headers["x-cache"] == "hit"


async def test_a_request_answered_from_a_copy_still_counts_against_the_rate_limit(edge: Callable[..., Any]) -> None:
    e: Edge = await edge(rate_limits="3/minute")
    student = e.bearer()
    statuses = [(await e.client.get("/api/courses", headers=student)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[2].headers["x-cache"] == "hit"


async def test_a_signed_out_session_is_refused_as_the_service_refuses_it_not_served_a_copy(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge()
    session = str(uuid.uuid4())
    leaving, staying = e.bearer(session_id=session), e.bearer(session_id=str(uuid.uuid4()))
    for headers in (leaving, staying):
        assert (await e.client.get("/api/courses", headers=headers)).status_code == 200
    assert (await e.client.get("/api/courses", headers=leaving)).headers["x-cache"] == "hit"

    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        await sign_out(redis, e.settings, [session])  # as a logout does
    finally:
        await redis.aclose()
    refused = await e.client.get("/api/courses", headers=leaving)
    assert refused.status_code == 401 and "x-cache" not in refused.headers
    await e.client.get("/api/courses")
    assert (await e.client.get("/api/courses")).headers["x-cache"] == "hit", "the anonymous visitors' copy"
    forged = await e.client.get("/api/courses", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401, "a token that does not verify is refused, never served the public's copy"
    assert (await e.client.get("/api/courses", headers=staying)).headers["x-cache"] == "hit", "the copy stays"


async def test_a_students_profile_is_kept_for_them_alone_and_every_change_shows_at_once(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge()

    async def signed_in(email: str) -> dict[str, str]:
        body = {"email": email, "password": "Mitochondria-Edge-7", "full_name": "Asha Rao", "grade": "12"}
        assert (await e.client.post("/api/auth/register", json=body)).status_code == 201
        login = await e.client.post("/api/auth/login", json={"email": email, "password": body["password"]})
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    asha, ravi = await signed_in("asha@example.com"), await signed_in("ravi@example.com")
    first = await e.client.get("/api/users/profile", headers=asha)
    assert first.status_code == 200 and "x-cache" not in first.headers
    calls = len(e.users.calls)
    again = await e.client.get("/api/users/profile", headers=asha)
    assert again.headers["x-cache"] == "hit" and again.json() == first.json() and len(e.users.calls) == calls
    other = await e.client.get("/api/users/profile", headers=ravi)
    assert "x-cache" not in other.headers and other.json()["email"] == "ravi@example.com", "never another's copy"

    changed = await e.client.put("/api/users/profile", json={"full_name": "Asha R. Rao"}, headers=asha)
    assert changed.status_code == 200
    after = await e.client.get("/api/users/profile", headers=asha)
    assert "x-cache" not in after.headers and after.json()["profile"]["full_name"] == "Asha R. Rao"
    assert (await e.client.get("/api/users/profile", headers=asha)).headers["x-cache"] == "hit"

    assert (await e.client.post("/api/auth/logout", headers=asha)).status_code == 204
    assert (await e.client.get("/api/users/profile", headers=asha)).status_code == 401, "signed out: no copy"


async def test_a_copy_read_again_is_answered_with_no_redis_round_trip_and_still_counted(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge(rate_limits="5/minute")
    student = e.bearer(session_id=str(uuid.uuid4()))
    answers = [await e.asked("/api/courses", student) for _ in range(5)]
    assert [a.status_code for a, _ in answers] == [200] * 5
    assert [asked for _, asked in answers] == [1, 1, 0, 0, 0], "from the third read on, no round trip"
    assert [a.headers.get("x-cache") for a, _ in answers] == [None, "hit", "hit", "hit", "hit"]
    assert [int(a.headers["ratelimit-remaining"]) for a, _ in answers] == [4, 3, 2, 1, 0]
    sixth = await e.client.get("/api/courses", headers=student)
    assert sixth.status_code == 429, "the hits counted without asking reached Redis before the sixth was decided"


async def test_a_change_made_behind_the_gateways_back_is_known_from_redis_report(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge()
    admin, student = e.bearer("admin"), e.bearer()
    course = (await e.client.post("/api/courses", json=course_body(title="Botany"), headers=admin)).json()
    url = f"/api/courses/{course['id']}"
    for _ in range(2):
        await e.client.get(url, headers=student)
    hit, asked = await e.asked(url, student)
    assert hit.headers["x-cache"] == "hit" and asked == 0

    # An operator (or another gateway's service) moves the generation on: Redis reports it.
    key = generation_key(e.courses.state.courses.cache.key("course", course["id"]), e.settings.redis_key_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        await redis.set(key, "moved-on")
    finally:
        await redis.aclose()
    await e.reported(key)
    served = len(e.upstream.calls)
    after, asked = await e.asked(url, student)
    assert "x-cache" not in after.headers and len(e.upstream.calls) == served + 1, "the service answers"
    assert asked == 1, "the gateway asked Redis again"


async def test_while_the_gateway_cannot_follow_redis_every_read_of_a_copy_asks_redis(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge()
    student = e.bearer()
    tracked = e.gateway.tracked
    assert tracked is not None and tracked.live
    tracked.retry_seconds = 0.2
    for _ in range(2):
        await e.client.get("/api/courses", headers=student)
    assert (await e.asked("/api/courses", student))[1] == 0

    async def until(live: bool) -> None:
        for _ in range(300):
            if tracked.live is live:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the tracking connection never became {'live' if live else 'down'}")

    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        # The connection that follows the changes is cut, as a Redis restart or a network fault would.
        await redis.execute_command("CLIENT", "KILL", "ID", str(tracked.client_id))
    finally:
        await redis.aclose()
    await until(live=False)
    cut, asked = await e.asked("/api/courses", student)
    assert cut.headers["x-cache"] == "hit" and asked == 1, "the copy still answers, checked in Redis"

    await until(live=True)  # reconnected: it starts from nothing, and learns again
    assert (await e.asked("/api/courses", student))[1] == 1
    again, asked = await e.asked("/api/courses", student)
    assert again.headers["x-cache"] == "hit" and asked == 0


async def test_a_request_sent_on_to_its_service_asks_redis_only_for_the_callers_first_decision(
    edge: Callable[..., Any],
) -> None:
    e: Edge = await edge(rate_limits="4/minute")
    student = e.bearer() | {"Cache-Control": "no-cache"}  # never answered from a copy
    answers = [await e.asked("/api/courses", student) for _ in range(4)]
    assert [(a.status_code, a.headers.get("x-cache")) for a, _ in answers] == [(200, None)] * 4
    assert [asked for _, asked in answers] == [1, 0, 0, 0], "Redis's first decision did for the next three"
    assert [int(a.headers["ratelimit-remaining"]) for a, _ in answers] == [3, 2, 1, 0]
    assert (await e.client.get("/api/courses", headers=student)).status_code == 429
