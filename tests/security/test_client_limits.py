"""Per-client limits count each real client, behind the gateway too, and every window of a limit applies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from services.gateway.app import create_app as create_gateway_app
from services.gateway.settings import GatewaySettings
from services.users.app import create_app as create_users_app
from services.users.settings import UsersSettings
from tests.conftest import free_port
from tests.security.embedded import running_platform, security_overrides
from tests.security.world import STUDENT_PASSWORD, expect


@asynccontextmanager
async def clients_of(app: Any, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per source address, all talking to the same in-process app."""
    made = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://academy", timeout=30
        )
        for address in addresses
    ]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def registration(**fields: Any) -> dict[str, Any]:
    return {
        "email": f"learner-{uuid.uuid4().hex[:10]}@example.com",
        "password": STUDENT_PASSWORD,
        "full_name": "Mendel Learner",
        **fields,
    }


async def test_every_window_of_the_registration_limit_applies(_embedded_only: None, tmp_path: Path) -> None:
    async with running_platform(tmp_path, register_limit_per_client="100/minute;2/hour") as (platform, _):
        async with clients_of(platform, "192.0.2.10", "192.0.2.11") as (client, other):
            for _ in range(2):
                expect(await client.post("/api/auth/register", json=registration()), 201)
            third = await client.post("/api/auth/register", json=registration())
            assert third.status_code == 429, third.text
            assert third.headers["content-type"].startswith("application/problem+json")
            assert int(third.headers["retry-after"]) > 60  # the hourly window, not the minute
            expect(await other.post("/api/auth/register", json=registration()), 201)


async def failed_logins(client: httpx.AsyncClient, count: int, **headers: str) -> list[int]:
    statuses = []
    for _ in range(count):
        wrong = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "Not-The-Password-1"}
        statuses.append((await client.post("/api/auth/login", json=wrong, headers=headers)).status_code)
    return statuses


async def test_one_client_failing_logins_does_not_lock_out_another_through_the_gateway(
    _embedded_only: None, tmp_path: Path
) -> None:
    async with running_platform(tmp_path, login_limit_per_client="60/minute") as (platform, _):
        async with clients_of(platform, "127.0.0.5", "127.0.0.6") as (guesser, student):
            account = registration()
            expect(await student.post("/api/auth/register", json=account), 201)
            assert set(await failed_logins(guesser, 60)) == {401}
            assert (await failed_logins(guesser, 1)) == [429]
            login = {"email": account["email"], "password": account["password"]}
            expect(await student.post("/api/auth/login", json=login), 200)


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serves an app over TCP on loopback, as its own process would; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", proxy_headers=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_behind_a_gateway_over_the_network_each_client_has_its_own_login_limit(
    _embedded_only: None, tmp_path: Path
) -> None:
    overrides = security_overrides(tmp_path, login_limit_per_client="3/minute")
    users = create_users_app(UsersSettings(**overrides, trusted_proxies=["127.0.0.1"]))
    async with served(users) as users_url:
        gateway = create_gateway_app(GatewaySettings(**overrides, upstreams={"users": users_url}))
        async with (
            gateway.router.lifespan_context(gateway),
            clients_of(gateway, "127.0.0.5", "127.0.0.6") as (
                guesser,
                student,
            ),
        ):
            account = registration()
            expect(await student.post("/api/auth/register", json=account), 201)
            assert await failed_logins(guesser, 4, **{"X-Forwarded-For": "127.0.0.6"}) == [401] * 3 + [429]
            login = {"email": account["email"], "password": account["password"]}
            expect(await student.post("/api/auth/login", json=login), 200)


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(_embedded_only: None, tmp_path: Path) -> None:
    async with running_platform(tmp_path, login_limit_per_client="5/minute") as (platform, _):
        async with clients_of(platform, "198.51.100.7") as (guesser,):
            statuses = [
                *(await failed_logins(guesser, 3, **{"X-Forwarded-For": "203.0.113.1"})),
                *(await failed_logins(guesser, 3, **{"X-Forwarded-For": "203.0.113.2, 10.0.0.1"})),
            ]
            assert statuses == [401] * 5 + [429]
            # Nor on the service's own path, past the gateway.
            wrong = {"email": "nobody@example.com", "password": "Not-The-Password-1"}
            direct = await guesser.post("/auth/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.3"})
            assert direct.status_code == 429, direct.text


async def test_a_trusted_proxy_names_the_client(_embedded_only: None, tmp_path: Path) -> None:
    proxy = "10.0.0.9"
    overrides = {"login_limit_per_client": "3/minute", "trusted_proxies": [proxy]}
    async with running_platform(tmp_path, **overrides) as (platform, _):
        async with clients_of(platform, proxy) as (balancer,):
            assert await failed_logins(balancer, 4, **{"X-Forwarded-For": "203.0.113.1"}) == [401] * 3 + [429]
            # Another student behind the same proxy, even one who claims the first one's address too.
            assert await failed_logins(balancer, 3, **{"X-Forwarded-For": "203.0.113.1, 203.0.113.2"}) == [401] * 3


async def test_the_services_own_paths_are_held_to_the_gateways_limit(_embedded_only: None, tmp_path: Path) -> None:
    async with running_platform(tmp_path, rate_limits="5/minute") as (platform, _):
        async with clients_of(platform, "192.0.2.20", "192.0.2.21") as (busy, other):
            statuses = [(await busy.get("/courses")).status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            refused = await busy.get("/courses")
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert int(refused.headers["retry-after"]) >= 1
            assert (await other.get("/courses")).status_code == 200
