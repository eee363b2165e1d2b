"""CPU per request of our instrumentation and of the gateway, measured in-process.

    .venv/bin/python -m bench.overhead_probe                  # every case, 5,000 requests a round
    .venv/bin/python -m bench.overhead_probe --cases empty --requests 20000 --rounds 5

Wall-clock rates on the shared machine are noise; CPU time is not (much). Each (case, variant)
runs in a process of its own, because tracing is set up once per process, and calls the app
straight through its ASGI interface (no HTTP client, no server) so that what is counted is the
app's own work: ``process_time`` (every thread, so the span exporter's thread is included, and a
``force_flush`` closes each round so that its batches are paid inside it) and ``thread_time``
(the event loop's thread only). Real routes use the real PostgreSQL and Redis (a schema and key
prefix of their own, removed afterwards); spans go to ``bench/otlp_sink.py`` over OTLP/HTTP, or
to a BatchSpanProcessor with an exporter that drops them ("null"), to isolate the SDK's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bench.harness import PG_URL, REDIS_URL, free_port
from bench.overhead_child import child_main, upstream_main

# variant -> environment of the child process (SINK is replaced by the sink's address).
VARIANTS: dict[str, dict[str, str]] = {
    "off": {"OBSERVABILITY": "off"},
    "middleware, no SDK": {"PROBE_NO_SDK": "1"},
    "100%, null export": {"OTEL_TRACES_EXPORTER": "none", "PROBE_NULL_EXPORTER": "1"},
    "100%, OTLP": {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "SINK"},
    "10%, null export, no library spans": {
        "OTEL_TRACES_EXPORTER": "none",
        "PROBE_NULL_EXPORTER": "1",
        "PROBE_NO_LIBRARIES": "1",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "10%, null export": {
        "OTEL_TRACES_EXPORTER": "none",
        "PROBE_NULL_EXPORTER": "1",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "10%, OTLP": {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "SINK",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
}
CASES: dict[str, Sequence[str]] = {
    "empty": list(VARIANTS),
    "courses": ["off", "100%, null export", "100%, OTLP", "10%, OTLP"],
    "users": ["off", "100%, null export", "100%, OTLP", "10%, OTLP"],
    "gateway": ["off", "100%, OTLP", "10%, OTLP"],
}
CASE_TITLES = {
    "empty": "empty route GET /ping/{item_id}",
    "courses": "courses GET /courses/{course_id}",
    "users": "users PUT /users/profile",
    "gateway": "gateway GET /api/courses/{id} (JWT, 2 limits)",
}


# --- the parent: cases, variants, the sink, the table -----------------------------------------


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"probe: nothing listens on {port}")


def _run_child(case: str, variant: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "bench.overhead_probe", "--child", case, "--requests", str(args.requests)]
    argv += ["--rounds", str(args.rounds), "--warmup", str(args.warmup), "--out-fd", str(write_fd)]
    process = subprocess.Popen(argv, env=env, pass_fds=(write_fd,))
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        output = pipe.read()
    if process.wait() != 0 or not output.strip():
        raise SystemExit(f"probe: {case} / {variant} failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(output)
    return result


def _setup_shared(args: argparse.Namespace) -> tuple[dict[str, str], Callable[[], None]]:
    from services.kit.auth import generate_key_pair

    schema, prefix = f"probe_{uuid.uuid4().hex[:10]}", f"probe:{uuid.uuid4().hex[:8]}:"
    data = f"/tmp/overhead-probe-{uuid.uuid4().hex[:8]}"
    private, _public = generate_key_pair()
    env = {"PROBE_SCHEMA": schema, "PROBE_PREFIX": prefix, "PROBE_DATA": data, "PROBE_JWT_KEY": private}

    def cleanup() -> None:
        import shutil

        import asyncpg
        import redis

        async def drop() -> None:
            conn = await asyncpg.connect(PG_URL)
            for case in CASES:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_{case}" CASCADE')
            await conn.close()

        if any(case != "empty" for case in args.cases):
            asyncio.run(drop())
            client = redis.Redis.from_url(REDIS_URL)
            for pattern in (f"{prefix}*", f"LIMITS:{prefix}*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
        shutil.rmtree(data, ignore_errors=True)

    return env, cleanup


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--cases", default="empty,courses,users,gateway")
    parser.add_argument("--variants", default="", help="semicolon-separated variant names (default: each case's own)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per process")
    parser.add_argument("--passes", type=int, default=2, help="processes per variant, the variants interleaved")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--ab", action="store_true", help="also time each round without the middleware (A/B)")
    parser.add_argument("--json", default="", help="also write the results to this file")
    parser.add_argument("--child", default="")
    parser.add_argument("--out-fd", type=int, default=1)
    parser.add_argument("--upstream", type=int, default=0)
    args = parser.parse_args(argv)
    if args.upstream:
        upstream_main(args.upstream)
        return
    if args.child:
        child_main(args.child, args.requests, args.rounds, args.warmup, args.out_fd)
        return
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    chosen = [v.strip() for v in args.variants.split(";") if v.strip()]
    sink_port, upstream_port = free_port(), free_port()
    helpers = [
        subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(sink_port)]),
        subprocess.Popen([sys.executable, "-m", "bench.overhead_probe", "--upstream", str(upstream_port)]),
    ]
    shared, cleanup = _setup_shared(args)
    rows: list[dict[str, Any]] = []
    try:
        _wait_port(sink_port)
        _wait_port(upstream_port)
        for case in args.cases:
            # Interleaved (A B C A B C): a busy neighbour then weighs on every variant alike.
            merged: dict[str, dict[str, Any]] = {}
            for pass_no in range(args.passes):
                for variant in chosen or CASES[case]:
                    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OBSERVABILITY"))}
                    env.update(shared)
                    env["PROBE_UPSTREAM"] = f"http://127.0.0.1:{upstream_port}"
                    if args.ab:
                        env["PROBE_AB"] = "1"
                    for key, value in VARIANTS[variant].items():
                        env[key] = value.replace("SINK", f"http://127.0.0.1:{sink_port}")
                    print(f"probe: {case} — {variant} (pass {pass_no + 1}) …", file=sys.stderr, flush=True)
                    result = _run_child(case, variant, env, args)
                    row = merged.setdefault(variant, {"case": case, "variant": variant, **result})
                    if pass_no:
                        for key in ("cpu_us", "thread_us", "wall_us", "bypassed_cpu_us"):
                            row[key] += result[key]
            rows.extend(merged.values())
    finally:
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)
        cleanup()
    _print(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


def _ab(row: dict[str, Any]) -> str:
    """The instrumentation's cost measured A/B in one process: the median of paired round differences."""
    pairs = list(zip(row["cpu_us"], row.get("bypassed_cpu_us") or [], strict=False))
    return f"{statistics.median(a - b for a, b in pairs):+.1f}" if pairs else ""


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        "| case | variant | CPU µs/req min | median | loop thread min | +µs vs off (min) "
        "| A/B in-process µs | Redis trips/req |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    base: dict[str, float] = {}
    for row in rows:
        cpu = min(row["cpu_us"])
        if row["variant"] == "off":
            base[row["case"]] = cpu
        extra = f"{cpu - base[row['case']]:+.1f}" if row["case"] in base else ""
        print(
            f"| {CASE_TITLES[row['case']]} | {row['variant']} | {cpu:.1f} | {statistics.median(row['cpu_us']):.1f} | "
            f"{min(row['thread_us']):.1f} | {extra} | {_ab(row)} | {row['redis_round_trips']:.2f} |"
        )


if __name__ == "__main__":
    main()
