"""`python -m bench.ingest`: analytics ingest throughput through the HTTP API against a raw COPY.

The analytics service runs under uvicorn pinned to core 0 on the real PostgreSQL and Redis, with
observability on; an aiohttp client pinned to core 1 sends 100,000 events in batches of 1,000 and
100,000 in batches of 100, eight requests in flight, bodies serialised beforehand. The reference
is asyncpg's ``copy_records_to_table`` of 100,000 such rows into a scratch table. Each figure is
the median of three rounds (BENCH_INGEST_ROUNDS): the machine is shared, and one run can be unlucky.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench.harness import LOAD_CPU, OUT, PG_URL, REDIS_URL, SERVER_CPU, free_port, pinned, sql, wait_ready

EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "100000"))
IN_FLIGHT = int(os.environ.get("BENCH_INGEST_IN_FLIGHT", "8"))
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "3"))
LEARNERS = 2000
TYPES = ("lesson_viewed", "video_played", "question_answered", "page_view")
COLUMNS = ("event_id", "occurred_at", "user_id", "type", "course_id", "lesson_id", "properties")


def make_events(count: int) -> list[dict[str, Any]]:
    """Events like a busy evening's: 2,000 learners, four kinds, spread over the last hour."""
    learners = [str(uuid.uuid4()) for _ in range(LEARNERS)]
    courses = [str(uuid.uuid4()) for _ in range(20)]
    now = datetime.now(UTC)
    events = []
    for n in range(count):
        kind = TYPES[n % len(TYPES)]
        properties: dict[str, Any] = {"seconds": n % 90, "page": f"/courses/{n % 20}/lessons/{n % 12}"}
        if kind == "question_answered":
            properties |= {"topic": f"topic-{n % 30}", "correct": n % 3 != 0}
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "user_id": learners[n % LEARNERS],
                "type": kind,
                "occurred_at": (now - timedelta(seconds=n % 3600)).isoformat(),
                "course_id": courses[n % 20],
                "lesson_id": str(uuid.uuid4()),
                "properties": properties,
            }
        )
    return events


def bodies(events: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [orjson.dumps({"events": events[i : i + batch]}) for i in range(0, len(events), batch)]


@contextmanager
def analytics_server(env: dict[str, str]) -> Iterator[str]:
    """The analytics service under uvicorn on the server core, until the block ends."""
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "services.analytics.app:create_app_from_env"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    log_path = OUT / "analytics-ingest.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(pinned(SERVER_CPU, argv), env={**os.environ, **env}, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, "/ready", process, timeout=60, name="the analytics service")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def send_all(url: str, token: str, payloads: list[bytes]) -> float:
    """Posts every body with IN_FLIGHT requests at a time; returns the seconds taken."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = iter(payloads)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            for body in queue:
                async with session.post(url + "/analytics/events", data=body) as response:
                    if response.status != 202:
                        raise SystemExit(f"bench: ingest answered {response.status}: {await response.text()}")
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - started


async def raw_copy(schema: str, events: list[dict[str, Any]], *, table: str) -> float:
    """COPYs the events into a scratch table with one asyncpg call; returns the seconds taken."""
    rows = [
        (
            e["event_id"],
            datetime.fromisoformat(e["occurred_at"]),
            e["user_id"],
            e["type"],
            e["course_id"],
            e["lesson_id"],
            orjson.dumps(e["properties"]).decode(),
        )
        for e in events
    ]
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    try:
        await conn.execute(
            f"CREATE TABLE {table} (event_id uuid, occurred_at timestamptz, user_id uuid, type varchar(64), "
            "course_id uuid, lesson_id uuid, properties jsonb, PRIMARY KEY (event_id, occurred_at))"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.close()


def _clear_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def run() -> dict[str, float]:
    """Measures ingest through the API in batches of 1,000 and 100, and the raw COPY reference."""
    from services.analytics.settings import AnalyticsSettings
    from services.kit.auth import TokenIssuer

    schema, prefix = f"bench_{uuid.uuid4().hex[:10]}", f"bench:{uuid.uuid4().hex[:8]}:"
    data_dir = Path(OUT / "data").resolve()
    # Minted before the server starts, so that both use the same development key.
    issuer = TokenIssuer(AnalyticsSettings(data_dir=data_dir, access_token_ttl_seconds=3600))
    token = issuer.issue(user_id=uuid.uuid4(), role="admin", session_id="bench")
    env = {
        "DATABASE_URL": PG_URL,
        "DATABASE_SCHEMA": schema,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "OBSERVABILITY": "on",
        "ENVIRONMENT": "test",
        "DATA_DIR": str(data_dir),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
    }
    warm_up = bodies(make_events(2000), 100)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity is not None:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    seconds: dict[int, list[float]] = {1000: [], 100: []}
    copies: list[float] = []
    try:
        with analytics_server(env) as url:
            asyncio.run(send_all(url, token, warm_up))
            for round_no in range(ROUNDS):
                for batch in (1000, 100):
                    payloads = bodies(make_events(EVENTS), batch)  # new ids each run: nothing is a resend
                    print(
                        f"bench: ingest {EVENTS:,} events in batches of {batch} ({round_no + 1}/{ROUNDS})…", flush=True
                    )
                    seconds[batch].append(asyncio.run(send_all(url, token, payloads)))
        for round_no in range(ROUNDS):
            copies.append(asyncio.run(raw_copy(schema, make_events(EVENTS), table=f"copy_reference_{round_no}")))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        asyncio.run(sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        _clear_redis(prefix)
    result = {
        "batch_1000_events_per_s": round(EVENTS / statistics.median(seconds[1000]), 1),
        "batch_100_events_per_s": round(EVENTS / statistics.median(seconds[100]), 1),
        "raw_copy_rows_per_s": round(EVENTS / statistics.median(copies), 1),
    }
    result["ratio_1000_to_copy"] = round(result["batch_1000_events_per_s"] / result["raw_copy_rows_per_s"], 3)
    result["ratio_100_to_copy"] = round(result["batch_100_events_per_s"] / result["raw_copy_rows_per_s"], 3)
    print_table(result)
    return result


def print_table(result: dict[str, float]) -> None:
    rows = [
        ("API, batches of 1,000", result["batch_1000_events_per_s"], result["ratio_1000_to_copy"]),
        ("API, batches of 100", result["batch_100_events_per_s"], result["ratio_100_to_copy"]),
        ("raw asyncpg COPY", result["raw_copy_rows_per_s"], 1.0),
    ]
    print("\n| path | events/s | vs raw COPY |\n|---|---:|---:|")
    for name, rate, ratio in rows:
        print(f"| {name} | {rate:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    run()
