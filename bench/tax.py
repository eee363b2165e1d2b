"""The observability tax: each request with full instrumentation (100% and 10% sampled) against none.

Per scenario the three variants run as three servers side by side on the server core (idle but
for the one under load), and the rounds interleave them (off, 100%, 10%, off, …); the median of
the rounds is kept, so that a noisy neighbour on the shared machine hits every variant alike.
Each service scenario has its own PostgreSQL schema and Redis key prefix, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import profile, seed
from bench.harness import OUT, PG_URL, REDIS_URL, WrkResult, servers, wrk

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
LOGIN_SECONDS = int(os.environ.get("BENCH_LOGIN_SECONDS", "8"))
TARGETS = {"full, 100% sampled": 0.10, "full, 10% sampled": 0.03}
"""The largest throughput loss each variant may cost (the issue's targets)."""
PASSWORD = "Mendel-Genetics-1"


def variants(sink_port: int) -> dict[str, dict[str, str]]:
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}", "OTEL_TRACES_EXPORTER": "otlp"}
    return {
        "off": {"OBSERVABILITY": "off"},
        "full, 100% sampled": {**exporting, "OTEL_TRACES_SAMPLER": "parentbased_always_on"},
        "full, 10% sampled": {
            **exporting,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    }


@dataclass(frozen=True)
class Request:
    """One request a scenario sends: what wrk is told."""

    scenario: str
    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: int = SECONDS
    connections: int = 16

    def run(self, url: str, *, seconds: int | None = None) -> WrkResult:
        return wrk(
            url + self.path,
            seconds=seconds or self.seconds,
            connections=self.connections,
            headers=self.headers,
            method=self.method,
            body=self.body,
            record=seconds is None,
        )


def _row(request: Request, variant: str, results: list[WrkResult], baseline: float) -> dict[str, Any]:
    rps = statistics.median(r.requests_per_s for r in results)
    ratio = rps / baseline
    row: dict[str, Any] = {
        "scenario": request.scenario,
        "variant": variant,
        "requests_per_s": round(rps, 1),
        "ratio_to_off": round(ratio, 3),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
        "p95_ms": round(statistics.median(r.p95_ms for r in results), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
        "non_2xx": sum(r.non_2xx for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [round(r.requests_per_s, 1) for r in results],
        "command": results[0].command,
    }
    allowed = TARGETS.get(variant)
    if allowed is not None:
        loss = 1 - ratio
        row |= {"target_max_loss": allowed, "loss": round(loss, 3), "met": loss <= allowed}
        row["miss"] = (
            None if loss <= allowed else f"loses {loss:.1%}, {(loss - allowed) * 100:.1f} points over {allowed:.0%}"
        )
    return row


def measure(
    requests: list[Request],
    app_env: dict[str, str],
    probe: str,
    sink_port: int,
    *,
    profile_variants: tuple[str, ...] = (),
    prepare: Callable[[str], list[Request]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Starts one server per variant, runs every request on each, interleaved, ROUNDS times.

    ``prepare`` gets the uninstrumented server's address before any load and returns the requests
    (for those that need an account made through the API first).
    """
    runs: dict[tuple[str, str], list[WrkResult]] = {}
    where: dict[str, Any] | None = None
    name = app_env.get("BENCH_APP", "app")
    specs = {f"tax-{name}-{variant[:9]}": {**app_env, **env} for variant, env in variants(sink_port).items()}
    with servers(specs, probe) as started:
        by_variant = dict(zip(variants(sink_port), started.values(), strict=True))
        if prepare is not None:
            requests = prepare(by_variant["off"].url)
        for running in by_variant.values():
            for request in requests:
                request.run(running.url, seconds=1)  # warm-up: lazy imports, prepared statements, pools
        for round_no in range(ROUNDS):
            for variant, running in by_variant.items():
                for request in requests:
                    print(
                        f"bench: {request.scenario} — {variant} (round {round_no + 1}/{ROUNDS}, {request.seconds}s)…",
                        flush=True,
                    )
                    runs.setdefault((request.scenario, variant), []).append(request.run(running.url))
        for variant in profile_variants:
            request, running = requests[0], by_variant[variant]
            print(f"bench: profiling {request.scenario} — {variant} with py-spy…", flush=True)
            with profile.recording(f"tax-{name}-{variant[:9]}", running.pid, request.seconds) as recorded:
                request.run(running.url, seconds=request.seconds + 1)
            where = where or {"scenario": request.scenario, "variant": variant, **recorded.summary}
            where.setdefault("instrumentation_share_by_variant", {})[variant] = recorded.summary.get(
                "instrumentation_share"
            )
    rows = []
    for request in requests:
        baseline = statistics.median(r.requests_per_s for r in runs[(request.scenario, "off")])
        for variant in variants(sink_port):
            rows.append(_row(request, variant, runs[(request.scenario, variant)], baseline))
    return rows, where


@contextmanager
def scratch(service: str) -> Iterator[dict[str, str]]:
    """A service's environment on its own PostgreSQL schema and Redis key prefix, dropped afterwards."""
    import asyncpg
    import redis

    schema, prefix = f"bench_{uuid.uuid4().hex[:10]}", f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "BENCH_APP": service,
        "DATABASE_URL": PG_URL,
        "DATABASE_SCHEMA": schema,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DATA_DIR": str((OUT / "data").resolve()),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "MIGRATE_ON_START": "false",
    }
    try:
        yield env
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(PG_URL)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()

        asyncio.run(drop())
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)


async def _first_course(schema: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        return str(await conn.fetchval(f'SELECT id FROM "{schema}".courses WHERE is_published ORDER BY title LIMIT 1'))
    finally:
        await conn.close()


def courses_scenario(sink_port: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """GET /courses/{id} of the seeded catalogue, read through the Redis cache."""
    with scratch("courses") as env:
        seed.prepare("courses", env, catalogue=True)
        course_id = asyncio.run(_first_course(env["DATABASE_SCHEMA"]))
        read = Request("courses GET /courses/{id}", f"/courses/{course_id}")
        return measure([read], env, "/health", sink_port, profile_variants=("full, 100% sampled", "off"))


def users_scenarios(sink_port: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """PUT /users/profile (a write) and POST /auth/login (argon2id at production strength)."""
    with scratch("users") as base:
        env = {**base, "LOGIN_LIMIT_PER_CLIENT": "100000000/minute", "LOGIN_LIMIT_PER_ACCOUNT": "100000000/minute"}
        account = {"email": "bench@example.com", "password": PASSWORD}
        seed.prepare("users", env)

        def prepare(url: str) -> list[Request]:
            httpx.post(url + "/auth/register", json={**account, "full_name": "Bench Student"}, timeout=30)
            token = httpx.post(url + "/auth/login", json=account, timeout=30).json()["access_token"]
            update = Request(
                "users PUT /users/profile",
                "/users/profile",
                method="PUT",
                body='{"full_name": "Bench Student", "city": "Pune", "school": "Kendriya Vidyalaya"}',
                headers={"Authorization": f"Bearer {token}"},
            )
            sign_in = Request(
                "users POST /auth/login",
                "/auth/login",
                method="POST",
                body=json.dumps(account),
                seconds=LOGIN_SECONDS,
                connections=2,
            )
            return [update, sign_in]

        return measure([], env, "/health", sink_port, prepare=prepare)


def run(sink_port: int) -> dict[str, Any]:
    """Every tax scenario: rows for the table, and where the time goes on the courses read at 100%."""
    rows, _ = measure([Request("empty route", "/ping/1")], {"BENCH_APP": "empty"}, "/ping/1", sink_port)
    courses, where = courses_scenario(sink_port)
    users, _ = users_scenarios(sink_port)
    return {
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "login_seconds": LOGIN_SECONDS,
        "rows": rows + courses + users,
        "where_the_time_goes": where,
    }
