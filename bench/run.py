"""`make bench`: the observability tax, each variant measured against OBSERVABILITY=off in one run.

Variants run interleaved (off, on, on-10%, off, …) and the median of the rounds is kept, so that
a noisy neighbour on the shared machine hits every variant alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from bench.harness import LOAD_CPU, OUT, SERVER_CPU, WrkResult, ensure_wrk, free_port, server, wrk

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = Path("bench/results.json")
TABLE = Path("bench/results.md")


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


def measure(
    scenario: str, app_env: dict[str, str], path: str, probe: str, sink_port: int, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    runs: dict[str, list[WrkResult]] = {}
    for round_no in range(ROUNDS):
        for variant, env in variants(sink_port).items():
            print(f"bench: {scenario} — {variant} (round {round_no + 1}/{ROUNDS}, {SECONDS}s)…", flush=True)
            port = free_port()
            with server(f"{scenario}-{round_no}-{variant[:4]}", {**app_env, **env}, port, probe) as url:
                wrk(url + path, seconds=2, headers=headers)  # warm-up
                runs.setdefault(variant, []).append(wrk(url + path, seconds=SECONDS, headers=headers))
    baseline = statistics.median(r.requests_per_s for r in runs["off"])
    rows = []
    for variant, results in runs.items():
        rps = statistics.median(r.requests_per_s for r in results)
        rows.append(
            {
                "scenario": scenario,
                "variant": variant,
                "requests_per_s": round(rps, 1),
                "ratio_to_off": round(rps / baseline, 3),
                "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
                "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
                "non_2xx": sum(r.non_2xx for r in results),
                "command": results[0].command,
            }
        )
    return rows


def users_scenario(sink_port: int) -> list[dict[str, Any]]:
    import asyncio

    import asyncpg  # noqa: F401 - checked here so a missing server fails before any run
    import redis

    schema, prefix = f"bench_{uuid.uuid4().hex[:10]}", f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "BENCH_APP": "users",
        "DATABASE_URL": PG_URL,
        "DATABASE_SCHEMA": schema,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DATA_DIR": str(OUT / "data"),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
    }
    with server("users-setup", {**env, "OBSERVABILITY": "off"}, free_port(), "/health") as url:
        body = {"email": "bench@example.com", "password": "Mendel-Genetics-1", "full_name": "Bench Student"}
        httpx.post(url + "/auth/register", json=body, timeout=30).raise_for_status()
        login = httpx.post(url + "/auth/login", json={"email": body["email"], "password": body["password"]}, timeout=30)
        token = login.json()["access_token"]
    try:
        return measure(
            "users GET /users/profile",
            env,
            "/users/profile",
            "/health",
            sink_port,
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(PG_URL)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()

        asyncio.run(drop())
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)


def versions() -> dict[str, str]:
    names = ["fastapi", "starlette", "uvicorn", "opentelemetry-sdk", "prometheus-client", "structlog", "sqlalchemy"]
    found = {name: metadata.version(name) for name in names}
    found["python"] = platform.python_version()
    found["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return found


def write(rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "server_cpu": SERVER_CPU,
                    "load_cpu": LOAD_CPU,
                },
                "settings": {"seconds": SECONDS, "rounds": ROUNDS, "connections": 16, "statistic": "median of rounds"},
                "versions": versions(),
                "observability_tax": rows,
                **extra,
            },
            indent=2,
        )
        + "\n"
    )
    lines = ["| scenario | instrumentation | req/s | vs off | p50 ms | p99 ms |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['variant']} | {r['requests_per_s']:,.0f} | "
            f"{r['ratio_to_off']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    bus = extra.get("event_bus")
    if bus:
        measured, bare = bus["platform"], bus["bare_pika"]
        lines += [
            "",
            "| event bus (outbox → RabbitMQ → idempotent consumer) | events/s | p50 ms | p99 ms | lost |",
            "|---|---:|---:|---:|---:|",
            f"| platform, {bus['events']:,} events | {measured['events_per_s']:,} | {measured['latency_p50_ms']} | "
            f"{measured['latency_p99_ms']} | {measured['events_lost']} |",
            f"| bare pika: publish / consume (reference) | {bare['publishes_per_s']:,} / {bare['consumes_per_s']:,}"
            " | | | |",
            f"| ratio to bare consume; target 5,000 events/s | {bus['ratio_to_bare_consume']} | | | |",
        ]
    ingest = extra.get("analytics_ingest")
    if ingest:
        lines += [
            "",
            "| analytics ingest (HTTP → PostgreSQL) | events/s | ratio to raw COPY |",
            "|---|---:|---:|",
            f"| batches of 1,000 (target 50,000/s) | {ingest['batch_1000_events_per_s']:,.0f} | "
            f"{ingest['ratio_1000_to_copy']} |",
            f"| batches of 100 (target 10,000/s) | {ingest['batch_100_events_per_s']:,.0f} | "
            f"{ingest['ratio_100_to_copy']} |",
            f"| raw COPY of the same rows (reference) | {ingest['raw_copy_rows_per_s']:,.0f} | 1.0 |",
        ]
    moved = extra.get("data_migration")
    if moved:
        lines += [
            "",
            "| data migration (phase 3) | rows/s |",
            "|---|---:|",
            f"| cerebrum data migrate, {moved['rows']:,} rows | {moved['migrate_rows_per_s']:,} |",
            f"| pg_dump --data-only \\| psql (reference) | {moved['pg_dump_psql_rows_per_s']:,} |",
        ]
    TABLE.write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    print(f"\nbench: wrote {RESULTS} and {TABLE}")


def main() -> None:
    ensure_wrk()
    OUT.mkdir(parents=True, exist_ok=True)
    sink_port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.otlp_sink", str(sink_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        rows = measure("empty route", {"BENCH_APP": "empty"}, "/ping/1", "/ping/1", sink_port)
        rows += users_scenario(sink_port)
    finally:
        sink.terminate()
    from bench import bus, datamigration, ingest

    extra: dict[str, Any] = {"event_bus": bus.run()}
    print("bench: analytics ingest through the HTTP API vs raw COPY…", flush=True)
    extra["analytics_ingest"] = ingest.run()
    print("bench: data migration copy vs pg_dump | psql…", flush=True)
    extra["data_migration"] = datamigration.run()
    write(rows, extra)


if __name__ == "__main__":
    main()
