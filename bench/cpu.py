"""Server CPU per request, by request type, through the gateway: `python -m bench.cpu`.

CPU time is the robust figure on a shared machine: latency moves with whoever else is busy, the
CPU a process spends on a request much less. For each request type, students from a pool made
before the run send it through the gateway, eight at a time, on kept-alive connections, with
tokens the servers have seen before (as all but a student's first request of a session); the
CPU time of every server process (the kernel's clock of it, to the nanosecond, with any worker processes) is read
before and after, after waiting for the event consumers to go quiet, less what the processes
spend idle (measured first). The table splits it: the gateway, the service that owns the route,
and the others (saga peers, event consumers).

``--at REV`` (repeated) measures revisions side by side in the same run: each checkout (a git
worktree) serves a platform of its own, all at once, with the same database server, broker, Redis
and settings, and the platforms take turns at each request type (``ROUNDS`` batches each), so
that the machine's drift falls on every revision alike; ``--at REV:-hiredis`` makes a module
unimportable there (a change that adds a dependency to the virtualenv would otherwise reach the
revisions before it). The table goes into bench/results.json under ``cpu_per_request`` and,
through bench/report.py, into bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import platforms, report, report_cpu, seed
from bench.academy import Academy, request_types
from bench.harness import OUT, cpu_seconds, otlp_sink, sessions_query, sql, sql_count

RESULTS = Path("bench/results.json")
CONCURRENCY = 8
ROOT = Path(__file__).resolve().parents[1]
OWNER = {
    "auth": "users",
    "users": "users",
    "courses": "courses",
    "curriculum": "courses",
    "leaderboard": "assessments",
    "analytics": "analytics",
    "questions": "assessments",
    "assessments": "assessments",
    "enrollments": "enrollments",
    "payments": "payments",
}


class Clock:
    """CPU seconds each server process (and its children) has used so far."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}

    def read(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, process in self.processes.items():
            tree = [process, *process.children(recursive=True)]
            used[name] = sum(cpu_seconds(p) for p in tree)
        return used


def _minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a[k] - b[k] for k in a}


def idle_rate(clock: Clock, seconds: float = 4.0) -> dict[str, float]:
    """CPU seconds per second each process spends with no requests (relays, consumers polling, scrapes)."""
    before, began = clock.read(), time.monotonic()
    time.sleep(seconds)
    return {k: v / (time.monotonic() - began) for k, v in _minus(clock.read(), before).items()}


def settle(clock: Clock, idle: dict[str, float], *, limit: float) -> dict[str, float]:
    """Waits (up to ``limit`` seconds) until no process is busier than idle; returns the CPU read then."""
    last, deadline = clock.read(), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = clock.read()
        busy = sum(_minus(now, last).values()) / 0.5 - sum(idle.values())
        last = now
        if busy < 0.02:
            break
    return last


def measure(clock: Clock, idle: dict[str, float], send: Callable[[], None]) -> dict[str, float]:
    """CPU seconds per process for what ``send`` does, consumers' follow-up included, idle cost taken off.

    A process the batch never reached can read below zero (its background work fell outside this
    batch) or above (inside it). The caller adds the batches up before it reads a negative total as
    zero: clipped batch by batch, that noise could only add to a request's figure, never cancel.
    """
    before, began = clock.read(), time.monotonic()
    send()
    last = settle(clock, idle, limit=30)  # the event consumers finish after the answers
    spent = _minus(last, before)
    wall = time.monotonic() - began
    return {k: v - idle[k] * wall for k, v in spent.items()}


def _owner(kind: str) -> str:
    return OWNER[kind.split()[1].split("/")[1]]


POOL = 5
"""Each service's pooled connections, and none beyond them: two platforms' seven services must fit in
PostgreSQL's 100. A sixth request at once waits for a connection rather than opening one: an
overflow connection is closed as it is given back, so eight at a time on a pool of three paid a
connection (a backend, its set-up queries, asyncpg's TLS attempt) on about one request in eight,
where a deployment's pool of ten would not. The run counts the connections opened while measuring."""
ROUNDS = 6
"""Turns the platforms take at each request type: a slow spell of the machine falls on all of them."""


@dataclass
class Side:
    """One platform being measured: its processes' clock, idle rate, request types and what they cost."""

    label: str
    clock: Clock
    kinds: list[tuple[str, Callable[[int], int]]]
    database: str
    idle: dict[str, float] = field(default_factory=dict)
    spent: dict[str, dict[str, float]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)

    def take_turn(self, at: int, numbers: range) -> None:
        """Sends the ``at``-th request type for students ``numbers``, eight at a time; adds up its CPU."""
        kind, send = self.kinds[at]
        statuses = self.statuses.setdefault(kind, [])

        def send_all() -> None:
            # A few at a time: the less wall time a batch takes, the less the idle
            # processes' own CPU (taken off as measured) can blur the figure.
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                statuses.extend(pool.map(send, numbers))

        spent = self.spent.setdefault(kind, {})
        for process, seconds in measure(self.clock, self.idle, send_all).items():
            spent[process] = spent.get(process, 0.0) + seconds

    def row(self, kind: str) -> dict[str, Any]:
        statuses = self.statuses[kind]
        served = sum(1 for code in statuses if 200 <= code < 300) or 1
        owner = _owner(kind)
        by = {k: round(max(0.0, v) / served * 1e6) for k, v in self.spent[kind].items()}
        return {
            "request": kind,
            "served": served,
            "refused": len(statuses) - served if statuses else 0,
            "cpu_us": sum(by.values()),
            "gateway": by["gateway"],
            "owner": owner,
            "owning_service": by[owner],
            "others": sum(v for k, v in by.items() if k not in ("gateway", owner)),
            "by_process": by,
        }


@dataclass(frozen=True)
class Target:
    """A revision to serve: its label, its checkout (None: this tree) and modules made unimportable."""

    label: str
    source: Path | None = None
    without: tuple[str, ...] = ()


@contextmanager
def _serving(target: Target, count: int, sink_port: int, only: tuple[str, ...]) -> Iterator[Side]:
    """A fresh distributed platform of ``target`` with its students, warmed up and ready to measure."""
    from cerebrum.pool import make_pool

    with platforms.distributed(
        sink_port,
        source=target.source,
        without=target.without,
        extra_env={"DATABASE_POOL_SIZE": str(POOL), "DATABASE_POOL_OVERFLOW": "0"},
    ) as platform:
        pool = asyncio.run(
            make_pool(
                2 * count,
                password=platforms.PASSWORD,
                ttl_seconds=3600,
                settings=seed.settings_from("users", platform.env),
            )
        )
        _room_for(platform.env["DATABASE_URL"], platform.student.course_id, count)
        clock = Clock({name: running.pid for name, running in platform.processes.items()})
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        with httpx.Client(base_url=platform.gateway.url, timeout=30, limits=limits) as client:
            course = client.get(f"/api/courses/{platform.student.course_id}", headers=platform.student.auth).json()
            academy = Academy(
                client=client,
                password=platforms.PASSWORD,
                accounts=pool.accounts[:count],
                course_id=platform.student.course_id,
                lessons=[lesson["id"] for lesson in course.get("lessons", [])],
                newcomers=pool.accounts[count:],
            )
            with ThreadPoolExecutor(CONCURRENCY) as warm:
                refused = [code for code in warm.map(academy.known, range(count)) if code >= 400]
            if refused:
                raise RuntimeError(f"bench: cpu — {target.label}: {len(refused)} students' warm-up reads were refused")
            kinds = [(k, send) for k, send in request_types(academy) if not only or any(o in k for o in only)]
            for _, send in kinds:  # one of each first: lazy imports and first compilations
                send(count - 1)
            database = platform.env["DATABASE_URL"].rsplit("/", 1)[1]
            yield Side(label=target.label, clock=clock, kinds=kinds, database=database)


def _room_for(database_url: str, course_id: str, students: int) -> None:
    """Gives the bench's course a seat for each student measured: the demo catalogue's courses hold a
    few dozen, and an enrolment refused for want of a seat would be priced as if it had been served."""
    seats = f"UPDATE courses.courses SET capacity = seats_taken + {students + 1} WHERE id = '{uuid.UUID(course_id)}'"
    asyncio.run(sql(seats, database_url))


def run_platforms(targets: list[Target], count: int, *, only: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every request type ``count`` times on each target's platform, all serving at once; CPU µs per request.

    The platforms take turns: each request type is sent in ``ROUNDS`` batches, a batch to each
    platform in turn, the first of each round rotating. Measured one after the other, two
    platforms of the same revision read up to a third apart (the machine is shared, and its
    speed drifts over minutes); taking turns, a drift falls on all of them alike.
    """
    with otlp_sink() as sink_port, ExitStack() as stack:
        sides = [stack.enter_context(_serving(target, count, sink_port, only)) for target in targets]
        for side in sides:
            # The warm-up's events (an enrolment, a payment, a test) are consumed before anything is measured.
            settle(side.clock, {name: 0.025 for name in side.clock.processes}, limit=60)
        for side in sides:
            side.idle = idle_rate(side.clock)
            print(f"bench: cpu — {side.label}: idle {sum(side.idle.values()) * 1e3:.1f} ms/s of CPU", flush=True)
        opened = {side.label: _connections_made(side.database) for side in sides}
        step = max(1, math.ceil((count - 1) / ROUNDS))
        batches = [range(first, min(first + step, count - 1)) for first in range(0, count - 1, step)]
        for at, (kind, _) in enumerate(sides[0].kinds):
            for turn, numbers in enumerate(batches):
                first = turn % len(sides)
                for side in sides[first:] + sides[:first]:
                    side.take_turn(at, numbers)
            for side in sides:
                row = side.row(kind)
                refused = Counter(code for code in side.statuses[kind] if not 200 <= code < 300)
                codes = "".join(f", {n} × {code or 'not sent'}" for code, n in sorted(refused.items()))
                print(
                    f"bench: cpu — {side.label}: {kind} {row['cpu_us']:,} µs ({row['served']} served{codes})",
                    flush=True,
                )
        time.sleep(1.5)  # a backend reports its connection with its statistics, within a second
        return [
            {
                "label": side.label,
                "rows": [side.row(kind) for kind, _ in side.kinds],
                "connections_opened": _connections_made(side.database) - opened[side.label],
            }
            for side in sides
        ]


def _connections_made(database: str) -> int:
    """Connections PostgreSQL has opened to ``database`` so far (its statistics' ``sessions``)."""
    return asyncio.run(sql_count(sessions_query(database)))


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A git worktree of ``rev`` in a scratch folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cerebrum-rev-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=ROOT, check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


def _sha(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="requests of each type (default 60)")
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="REV[:-MODULE,...]",
        help="a revision to measure, served from its own checkout beside the others; "
        "':-hiredis' makes hiredis unimportable there; '.' is this working tree (the default when none is given)",
    )
    parser.add_argument("--change", default="", help="what changed from one to the next, for the table")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="only the request types whose name holds TEXT"
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with ExitStack() as trees:
        targets = []
        for at in args.at or ["."]:
            rev, _, blocked = at.partition(":")
            without = tuple(m.removeprefix("-") for m in blocked.split(",") if m)
            label = ("this tree" if rev == "." else _sha(rev)) + "".join(f", without {m}" for m in without)
            source = None if rev == "." else trees.enter_context(checkout(rev))
            targets.append(Target(label=label, source=source, without=without))
        runs = run_platforms(targets, args.requests, only=tuple(args.only))
    comparison = {
        "change": args.change,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "requests_each": args.requests,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "runs": runs,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    section = results.setdefault("cpu_per_request", {})
    section.setdefault("comparisons", []).append(comparison)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    table = "\n".join(report_cpu.cpu_comparison(comparison))
    print("\n" + table)
    Path("bench/results.md").write_text(report.markdown(results))


if __name__ == "__main__":
    main()
