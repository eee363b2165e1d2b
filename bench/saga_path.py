"""The enrolment saga's path, read from its traces: `python -m bench.saga_path`.

The students' load breaks on enrollments' p95, which the saga decides. Its latency is a chain:
every statement, Redis command and call on the way is a wait on another process, which under
load waits its turn for a core. This bench runs sagas one at a time on the distributed platform
with every trace kept (an OTLP sink that records spans), then reads each request's synchronous
path from its spans (the events it publishes are followed asynchronously and left out): per
process, the time in its own code, and how many database statements and Redis commands it waited
on and for how long; and how many rounds of calls the saga made one after the other. Medians over
the sagas go into bench/results.json under ``saga_path`` and, through bench/report.py, into
bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import platforms, report, seed
from bench.harness import OUT, free_port

RESULTS = Path("bench/results.json")
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's span kinds
SQL = ("SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "connect")
SAGAS = 100
GAP_SECONDS = 0.2
FLUSH_SECONDS = 8.0  # the batch span processor exports every 5 s


@dataclass
class Span:
    service: str
    name: str
    kind: int
    id: str
    parent: str
    start: int
    end: int
    children: list[Span] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return (self.end - self.start) / 1e6


def _what(span: Span) -> str:
    """A waiting span's kind: a call to another service, a database statement, or a Redis command."""
    if any(child.kind == SERVER for child in span.children):
        return "call"
    if span.name.split(" ", 1)[0] in SQL:
        return "db"
    return "redis" if span.kind == CLIENT else "internal"


def _union_ms(intervals: list[tuple[int, int]]) -> float:
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total / 1e6


def _waits(server: Span) -> dict[str, list[Span]]:
    """The spans a server span waited on in its own process (through its internal spans), by kind."""
    found: dict[str, list[Span]] = defaultdict(list)
    stack = list(server.children)
    while stack:
        span = stack.pop()
        if span.service != server.service or span.kind in (PRODUCER, CONSUMER):
            continue
        what = _what(span)
        if what == "internal":
            stack.extend(span.children)
        else:
            found[what].append(span)
    return found


def path_of(root: Span) -> dict[str, Any]:
    """One request's synchronous path: per process, own time and what it waited on; call rounds."""
    by_service: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rounds = 0
    servers, stack = [], [root]
    while stack:
        span = stack.pop()
        if span.kind in (PRODUCER, CONSUMER):
            continue  # an event: followed after the answer
        if span.kind == SERVER:
            servers.append(span)
        stack.extend(span.children)
    for server in servers:
        waits = _waits(server)
        row = by_service[server.service]
        row["own_ms"] += server.ms - _union_ms([(w.start, w.end) for spans in waits.values() for w in spans])
        for kind in ("db", "redis"):
            row[f"{kind}_n"] += len(waits[kind])
            row[f"{kind}_ms"] += sum(w.ms for w in waits[kind])
        if server.service == "enrollments":
            calls = sorted((w.start, w.end) for w in waits["call"])
            reach: int | None = None
            for start, end in calls:  # calls that overlap make one round
                if reach is None or start >= reach:
                    rounds += 1
                reach = end if reach is None else max(reach, end)
    return {"ms": root.ms, "call_rounds": rounds, "by_service": {k: dict(v) for k, v in by_service.items()}}


def read_paths(spans_file: Path, *, since_ns: int = 0) -> list[dict[str, Any]]:
    """The path of every traced saga (a gateway request with saga spans, begun after ``since_ns``)."""
    traces: dict[str, list[Span]] = defaultdict(list)
    for line in spans_file.read_text().splitlines():
        row = json.loads(line)
        traces[row.pop("trace")].append(Span(**row))
    paths = []
    for spans in traces.values():
        by_id = {s.id: s for s in spans}
        for span in spans:
            if span.parent in by_id:
                by_id[span.parent].children.append(span)
        roots = [
            s
            for s in spans
            if s.service == "gateway" and s.kind == SERVER and s.parent not in by_id and s.start >= since_ns
        ]
        if roots and any(s.name.startswith("saga.") for s in spans):
            paths.append(path_of(roots[0]))
    return paths


def summary(paths: list[dict[str, Any]], wall_ms: list[float]) -> dict[str, Any]:
    """Medians over the sagas of each figure of their paths."""
    services = sorted({name for p in paths for name in p["by_service"]})
    fields = ("own_ms", "db_n", "db_ms", "redis_n", "redis_ms")
    by_service = {
        name: {f: round(statistics.median(p["by_service"].get(name, {}).get(f, 0.0) for p in paths), 1) for f in fields}
        for name in services
    }
    ordered = sorted(wall_ms)
    return {
        "sagas": len(paths),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
        "traced_p50_ms": round(statistics.median(p["ms"] for p in paths), 1),
        "call_rounds": statistics.median(p["call_rounds"] for p in paths),
        "db_statements": round(sum(row["db_n"] for row in by_service.values())),
        "redis_commands": round(sum(row["redis_n"] for row in by_service.values())),
        "by_service": by_service,
    }


def run(count: int) -> dict[str, Any]:
    """``count`` sagas one after another on a fresh distributed platform, every trace kept."""
    from cerebrum.pool import make_pool

    OUT.mkdir(parents=True, exist_ok=True)
    spans_file = (OUT / "saga-spans.jsonl").resolve()
    spans_file.write_text("")
    sink_port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.otlp_sink", str(sink_port), str(spans_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall_ms: list[float] = []
    since_ns = 0
    try:
        every_trace = {"OTEL_TRACES_SAMPLER_ARG": "1.0"}
        with platforms.distributed(sink_port, extra_env=every_trace) as platform:
            settings = seed.settings_from("users", platform.env)
            pool = asyncio.run(make_pool(count, password=platforms.PASSWORD, ttl_seconds=3600, settings=settings))
            with httpx.Client(base_url=platform.gateway.url, timeout=30) as client:
                first = {"Authorization": f"Bearer {pool.accounts[0]['token']}"}
                catalogue = client.get("/api/courses", params={"limit": 100}, headers=first).json()
                courses = [course["id"] for course in catalogue["items"]]
                since_ns = time.time_ns()  # the setup's own enrolment is not one of the sagas
                for n, account in enumerate(pool.accounts):
                    began = time.perf_counter()
                    reply = client.post(
                        "/api/enrollments",
                        json={"course_id": courses[n % len(courses)]},
                        headers={"Authorization": f"Bearer {account['token']}"},
                    )
                    if reply.status_code == 201:
                        wall_ms.append((time.perf_counter() - began) * 1e3)
                    if (n + 1) % 20 == 0:
                        print(f"bench: saga path — {n + 1}/{count} sagas", flush=True)
                    time.sleep(GAP_SECONDS)
                time.sleep(FLUSH_SECONDS)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    paths = read_paths(spans_file, since_ns=since_ns)
    if not paths or not wall_ms:
        raise SystemExit("bench: saga path — no saga was traced")
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **summary(paths, wall_ms)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.saga_path", description=__doc__.split("\n")[0])
    parser.add_argument("--sagas", type=int, default=SAGAS, help=f"sagas to run, one at a time (default {SAGAS})")
    args = parser.parse_args(argv)
    result = run(args.sagas)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["saga_path"] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + "\n".join(report.saga_path(result)))
    Path("bench/results.md").write_text(report.markdown(results))


if __name__ == "__main__":
    main()
