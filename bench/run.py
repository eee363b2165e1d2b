"""`make bench`: what the platform costs, each figure against a reference measured in the same run.

1. observability tax (bench/tax.py): empty route, GET /courses/{id}, PUT /users/profile and
   POST /auth/login, each with instrumentation off, on at 100% and at 10% sampling;
2. gateway overhead (bench/gateway.py): direct, through our gateway, through nginx;
3. framework ceiling (bench/ceiling.py): a bare FastAPI route against each service's hot read;
6. capacity (bench/capacity.py): open-loop rates per service within its p95 SLO, and concurrent
   students on the distributed platform (servers on core 0, then on both cores beside the load
   generator, doubling from what one core held) and on the embedded one;
7. memory (bench/memory.py): RSS of both platforms, idle and under the students;
then the event bus, the analytics ingest, the phase-3 data copy, and what shadow traffic to a
hanging side costs a user (bench/shadow.py).
Servers run on core 0, load generators on core 1; where a target is missed, py-spy says where
the time goes. Writes bench/results.json (machine, versions, settings, every command) and
bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from bench import capacity, ceiling, gateway, harness, memory, platforms, report, seed, tax
from bench.harness import COMMANDS, LOAD_CPU, OUT, PG_URL, REDIS_URL, SERVER_CPU, ensure_wrk, otlp_sink

RESULTS = Path("bench/results.json")
TABLE = Path("bench/results.md")
T = TypeVar("T")


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def _servers() -> dict[str, str]:
    import asyncio

    import asyncpg
    import redis

    async def postgres() -> str:
        conn = await asyncpg.connect(PG_URL)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return {
        "postgresql server": asyncio.run(postgres()),
        "redis server": str(redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]),
        "rabbitmq server": _version(["rabbitmqctl", "-q", "version"]),
    }


def versions() -> dict[str, str]:
    names = [
        "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "opentelemetry-sdk",
        "prometheus-client", "structlog", "sqlalchemy", "asyncpg", "redis", "locust",
    ]  # fmt: skip
    found = {name: metadata.version(name) for name in names}
    found["python"] = platform.python_version()
    found["wrk"] = _version(["wrk", "--version"])
    found["nginx"] = _version(["nginx", "-v"])
    found["py-spy"] = _version([str(Path(sys.executable).with_name("py-spy")), "--version"])
    return {**found, **_servers()}


def machine() -> dict[str, Any]:
    model = "?"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory_kb = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "server_cpu": SERVER_CPU if harness.SERVER_CORES == "one" else "all",
        "load_cpu": LOAD_CPU if harness.SERVER_CORES == "one" else "all",
        "load_average_before": round(os.getloadavg()[0], 2),
        "shared": "other work runs on this machine at the same time: compare figures within one run only",
    }


def settings() -> dict[str, Any]:
    return {
        "tax": {"seconds": tax.SECONDS, "rounds": tax.ROUNDS, "login_seconds": tax.LOGIN_SECONDS, "connections": 16},
        "tax_statistic": "median of interleaved rounds; three servers side by side, one loaded at a time",
        "gateway": {"seconds": gateway.SECONDS, "latency_seconds": gateway.LATENCY_SECONDS},
        "ceiling": {"seconds": ceiling.SECONDS, "connections": 16},
        "capacity": {
            "step_seconds": capacity.STEP_SECONDS,
            "student_seconds": capacity.STUDENT_SECONDS,
            "arrivals_per_s": capacity.SPAWN_RATE,
            "think_time_s": list(capacity.THINK),
            "levels": capacity.LEVELS,
            "settle_s": capacity.SETTLE,
            "hold_s": capacity.HOLD,
        },
        "platforms": {"environment": platforms.TUNING, "traces": "parentbased_traceidratio 0.1, OTLP to a sink"},
        "uvicorn": "one process, uvloop + httptools, no access log (as cerebrum serve runs each service)",
        "pinning": "servers start on both cores and every thread is moved to the server core once ready"
        if harness.SERVER_CORES == "one"
        else "nothing pinned: servers and load generators share both cores",
        "data": "schemas migrated and the demo catalogue and questions seeded in-process, as `cerebrum db upgrade`, "
        "`cerebrum seed catalogue` and `cerebrum up` do, into a scratch schema or database dropped afterwards",
        "environment": {k: v for k, v in os.environ.items() if k.startswith("BENCH_")},
    }


def timed(timings: dict[str, float], name: str, step: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return step()
    finally:
        timings[name] = round(time.perf_counter() - started, 1)


def student_pool(env: dict[str, str], name: str, timings: dict[str, float]) -> Path:
    """`cerebrum seed students` for the largest step, made in the platform's users store before the load."""
    from cerebrum.pool import make_pool

    count = max(int(n) for n in capacity.LEVELS.split(","))
    settings = seed.settings_from("users", env)
    print(f"bench: {count:,} students made before the load on the {name} platform…", flush=True)
    pool = asyncio.run(
        make_pool(count, password=platforms.PASSWORD, ttl_seconds=capacity.STUDENT_SECONDS + 3600, settings=settings)
    )
    timings[f"pool_{name}"] = pool.seconds
    path = (OUT / f"students-{name}" / "pool.json").resolve()
    pool.write(path)
    COMMANDS.append(f"cerebrum seed students --count {count} --out {path}  # in-process, the platform's environment")
    return path


def platform_figures(
    sink_port: int, results: dict[str, Any], timings: dict[str, float], *, only_students: bool = False
) -> None:
    """Gateway, ceiling, capacity and memory: on the distributed platform, then the embedded one."""
    started = time.perf_counter()
    students: list[dict[str, Any]] = []
    with platforms.distributed(sink_port) as distributed:
        timings["distributed_start"] = round(time.perf_counter() - started, 1)
        pids = {name: running.pid for name, running in distributed.processes.items()}
        idle = memory.snapshot(pids)
        if not only_students:
            results["framework_ceiling"] = timed(timings, "ceiling", lambda: ceiling.run(distributed))
            results["gateway_overhead"] = timed(timings, "gateway", lambda: gateway.run(distributed))
            rates = timed(timings, "rates", lambda: capacity.rates(distributed, results["framework_ceiling"]))
            results.setdefault("capacity", {})["rates"] = rates
        spread, peak = distributed_students(distributed, timings, "students_distributed")
        students.append(spread)
        results.setdefault("memory", {})["distributed"] = {"idle_mb": idle, "load_mb": peak}
    if not only_students and harness.SERVER_CORES == "one":
        students.append(students_on_both_cores(sink_port, timings, held=spread["students_held"]))
    if not only_students:
        started = time.perf_counter()
        with platforms.embedded(sink_port) as embedded:
            from slo.load.runner import warm_up

            warm_up(embedded.url, embedded_accounts(embedded.argv))
            timings["embedded_start"] = round(time.perf_counter() - started, 1)
            idle_mb = memory.rss_mb(embedded.pid)
            env = {**platforms.TUNING, "DATA_DIR": embedded.argv[embedded.argv.index("--data-dir") + 1]}
            pool = student_pool(env, "embedded", timings)
            one, peak = timed(
                timings,
                "students_embedded",
                lambda: capacity.students(
                    embedded.url, "embedded", {"embedded": embedded.pid}, pool=pool, profile_pid=embedded.pid
                ),
            )
            students.append(one)
            results["memory"]["embedded"] = {"idle_mb": idle_mb, "load_mb": peak["embedded"]}
    results.setdefault("capacity", {})["students"] = students
    results["students"] = headline(best(students))


def students_on_both_cores(sink_port: int, timings: dict[str, float], *, held: int) -> dict[str, Any]:
    """The distributed platform's students again with nothing pinned, doubling from what one core held:
    the machine's figure, beside one core's."""
    levels = capacity.LEVELS
    capacity.LEVELS = doubling_from(held, levels)
    try:
        with harness.server_cores("both"), platforms.distributed(sink_port) as distributed:
            return distributed_students(distributed, timings, "students_distributed_both_cores")[0]
    finally:
        capacity.LEVELS = levels


def distributed_students(
    distributed: platforms.Distributed, timings: dict[str, float], label: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """The students from a pool made for them, through the distributed platform's gateway; the
    verdict and the processes' peak RSS."""
    pids = {name: running.pid for name, running in distributed.processes.items()}
    pool = student_pool(distributed.env, "distributed", timings)
    database = distributed.env["DATABASE_URL"].rsplit("/", 1)[1]
    return timed(
        timings,
        label,
        lambda: capacity.students(distributed.gateway.url, "distributed", pids, pool=pool, database=database),
    )


def doubling_from(held: int, levels: str) -> str:
    """Steps doubling from ``held`` (or the first of ``levels``, if larger) up to the last of ``levels``."""
    steps = [int(step) for step in levels.split(",")]
    level, top, out = max(held, steps[0]), steps[-1], []
    while level < top:
        out.append(level)
        level *= 2
    return ",".join(map(str, [*out, top]))


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run that held the most students (the first of equals): the figure the README leads with."""
    return max(runs, key=lambda run: run["students_held"] or 0)


def arrangement(run: dict[str, Any]) -> tuple[str, str]:
    return run["platform"], run.get("server_cores", "one")


def merged(runs: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The students runs with ``fresh`` ones in place of those of the same platform and core arrangement."""
    by = {arrangement(run): run for run in fresh}
    return [by.pop(arrangement(run), run) for run in runs] + list(by.values())


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """The figures the README quotes: students held within every SLO, at what think time, rate and CPU."""
    return {
        "platform": run["platform"],
        "held_within_slo": run["students_held"],
        "think_seconds": [float(t) for t in run["think_time_s"].split("-")],
        "rps": run["requests_per_s_at_that_load"],
        "cpu_us_per_request": run["cpu_us_per_request"],
        "cpu_us_per_request_by_process": run["cpu_us_per_request_by_process"],
        "server_cores_used": run["server_cores_used"],
        "load_generator_cores_used": run["load_generator_cores_used"],
        "broke_at": run["broke_at_students"],
        "broken_services": run["broken_services"],
        "server_cores": run.get("server_cores", "one"),
        "from_pool": True,
    }


def embedded_accounts(argv: list[str]) -> Path:
    return Path(argv[argv.index("--data-dir") + 1]) / "demo-accounts.json"


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        choices=("all", "students", "gateway"),
        default="all",
        help="students: only the concurrent students on the distributed platform, in place of the last "
        "results' row of the same --server-cores; gateway: only the gateway against nginx; either merged into "
        "the last results",
    )
    parser.add_argument("--think", help="think time MIN-MAX seconds (default 10-30; 5-15 and 1-5 as options)")
    parser.add_argument("--levels", help="student steps, e.g. 100,200,400 (default up to 12,000)")
    parser.add_argument("--hold", type=int, help="seconds each step is judged over (default 60)")
    parser.add_argument("--settle", type=int, help="seconds after arrivals before judging (default: max think)")
    parser.add_argument("--seconds", type=int, help="the students' run stops after this many seconds (default 900)")
    parser.add_argument(
        "--server-cores",
        choices=("one", "both"),
        help="one (default): servers on core 0, load generators on core 1; both: nothing pinned, all share both",
    )
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> None:
    """Flags win over BENCH_* variables for this run."""
    if args.think:
        low, _, high = args.think.partition("-")
        capacity.THINK = (low, high or low)
        if args.settle is None:
            capacity.SETTLE = int(float(high or low))
    if args.levels:
        capacity.LEVELS = args.levels
    if args.server_cores:
        harness.SERVER_CORES = args.server_cores
    for flag, name in (("hold", "HOLD"), ("settle", "SETTLE"), ("seconds", "STUDENT_SECONDS")):
        if getattr(args, flag) is not None:
            setattr(capacity, name, getattr(args, flag))


CARRIED_OVER = ("cpu_per_request",)


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    configure(args)
    began = time.perf_counter()
    ensure_wrk()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only == "students":
        fresh: dict[str, Any] = {}
        fresh["students_run"] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
        timings: dict[str, float] = {}
        with otlp_sink() as sink_port:
            platform_figures(sink_port, fresh, timings, only_students=True)
        # Merged into the results as they are now, not as they were when the run began.
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        runs = merged(results.get("capacity", {}).get("students", []), fresh["capacity"]["students"])
        results.setdefault("capacity", {})["students"] = runs
        results.setdefault("memory", {})["distributed"] = fresh["memory"]["distributed"]
        results.setdefault("timings_s", {}).update(timings)
        fresh["students_run"]["server_cores"] = harness.SERVER_CORES
        results |= {"students": headline(best(runs)), "students_run": fresh["students_run"], "settings": settings()}
        write(results)
        return
    if args.only == "gateway":
        gateway_only()
        return
    results = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    timings = {}
    with otlp_sink(record=True) as sink_port:
        results["observability_tax"] = timed(timings, "tax", lambda: tax.run(sink_port))
        platform_figures(sink_port, results, timings)
    from bench import bus, datamigration, ingest

    results["event_bus"] = timed(timings, "event_bus", bus.run)
    print("bench: analytics ingest through the HTTP API vs raw COPY…", flush=True)
    results["analytics_ingest"] = timed(timings, "analytics_ingest", ingest.run)
    print("bench: data migration copy vs pg_dump | psql…", flush=True)
    results["data_migration"] = timed(timings, "data_migration", datamigration.run)
    from bench import saga_path, shadow

    results["shadow_mirror"] = timed(timings, "shadow_mirror", shadow.run)
    print("bench: the enrolment saga's path, read from its traces…", flush=True)
    results["saga_path"] = timed(timings, "saga_path", lambda: saga_path.run(saga_path.SAGAS))
    results["machine"]["load_average_after"] = round(os.getloadavg()[0], 2)
    results["wall_seconds"] = round(time.perf_counter() - began, 1)
    results |= {"timings_s": timings, "settings": settings(), "versions": versions(), "commands": COMMANDS}
    # Measured by commands of their own (bench.cpu, bench.hiredis, bench.upserts, bench.dbpath), in runs a full run
    # does not repeat: their before-and-after record stays.
    earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for kept in CARRIED_OVER:
        if kept in earlier:
            results[kept] = earlier[kept]
    results["wrk_scripts"] = {
        path.as_posix(): path.read_text()
        for path in sorted(OUT.glob("wrk-*.lua"))
        if any(path.as_posix() in c for c in COMMANDS)
    }
    write(results)


def gateway_only() -> None:
    """The gateway against nginx on a fresh distributed platform, merged into the results as they are now."""
    with otlp_sink() as sink_port, platforms.distributed(sink_port) as distributed:
        measured = gateway.run(distributed)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["gateway_overhead"] = measured | {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    write(results)


def write(results: dict[str, Any]) -> None:
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    table = report.markdown(results)
    TABLE.write_text(table)
    print("\n" + table)
    print(f"bench: wrote {RESULTS} and {TABLE}")


if __name__ == "__main__":
    main()
