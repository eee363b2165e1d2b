"""Locust file for `make bench`: the academy's students (slo/load/locustfile.py) in steps of concurrency.

The number of students doubles from step to step (BENCH_LEVELS). At each step the new students
arrive (BENCH_SPAWN_RATE a second; from the pool made before the run, LOAD_POOL, already signed
in, or else each registering and logging in), the platform is given BENCH_SETTLE seconds to absorb
their arrival, then BENCH_HOLD seconds of browsing, searching, tests and enrolments
(LOAD_THINK_MIN–MAX seconds of think time) are judged per service against its SLO: p95 latency,
and the share of server errors (setup steps left out). Over the same window the CPU time of every
server process (BENCH_SERVER_PIDS, with any worker processes they start: the kernel's clock of
each), of this load generator and of each core (/proc) is read: server CPU over requests served
is the step's CPU per request.
After the first step that fails, one step halfway back down is tried; then the run stops, as it
does after BENCH_STUDENT_SECONDS. The verdicts go to ``$LOAD_OUT/students.json``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from locust import LoadTestShape, events

from bench.harness import cpu_seconds, sessions_query
from slo.load.locustfile import StudentUser  # noqa: F401 - the user Locust runs
from slo.spec import RouteScope

OUT = Path(os.environ.get("LOAD_OUT", "."))
LEVELS = [int(n) for n in os.environ.get("BENCH_LEVELS", "100,200,400,800,1600,3200,6400,10000,12000").split(",")]
SPAWN_RATE = float(os.environ.get("BENCH_SPAWN_RATE", "100"))
SETTLE = float(os.environ.get("BENCH_SETTLE", "30"))
HOLD = float(os.environ.get("BENCH_HOLD", "60"))
SECONDS = float(os.environ.get("BENCH_STUDENT_SECONDS", "900"))
MINIMUM = 20
OBJECTIVES: dict[str, dict[str, Any]] = json.loads(os.environ.get("BENCH_OBJECTIVES", "{}"))
SERVERS: dict[str, int] = json.loads(os.environ.get("BENCH_SERVER_PIDS", "{}"))
DATABASE = os.environ.get("BENCH_DATABASE", "")
PG_URL = os.environ.get("BENCH_PG_URL", "")
OWNER = {prefix: name for name, o in OBJECTIVES.items() for prefix in o["prefixes"]}


class CpuClock:
    """CPU seconds of the server processes (and their children), of this process, and of each core."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.servers = {name: psutil.Process(pid) for name, pid in SERVERS.items()}
        self.at = time.monotonic()
        self.start = self._read()

    def _read(self) -> dict[str, Any]:
        used: dict[str, float] = {}
        for name, process in self.servers.items():
            try:
                tree = [process, *process.children(recursive=True)]
                used[name] = sum(cpu_seconds(p) for p in tree)
            except psutil.Error:
                used[name] = 0.0
        mine = self.me.cpu_times()
        return {
            "servers": used,
            "load": mine.user + mine.system,
            "cores": psutil.cpu_times(percpu=True),
            "sessions": _sessions(),
        }

    def since(self, requests: int) -> dict[str, Any]:
        now, wall = self._read(), max(time.monotonic() - self.at, 1e-6)
        spent = {name: now["servers"][name] - self.start["servers"].get(name, 0.0) for name in now["servers"]}
        total = sum(spent.values())
        cores = {}
        for n, (a, b) in enumerate(zip(self.start["cores"], now["cores"], strict=False)):
            busy = (sum(b) - b.idle - b.iowait) - (sum(a) - a.idle - a.iowait)
            cores[f"cpu{n}"] = round(busy / max(sum(b) - sum(a), 1e-6), 3)
        return {
            "cpu_us_per_request": round(total / requests * 1e6) if requests and SERVERS else None,
            "cpu_us_per_request_by_process": {k: round(v / requests * 1e6) for k, v in spent.items()}
            if requests
            else {},
            "server_cores_used": round(total / wall, 3),
            "load_generator_cores_used": round((now["load"] - self.start["load"]) / wall, 3),
            "cores_busy": cores,
            "connections_opened": None
            if now["sessions"] is None or self.start["sessions"] is None
            else now["sessions"] - self.start["sessions"],
        }


def _sessions() -> int | None:
    """Connections PostgreSQL has opened to the platform's database so far (``pg_stat_database.sessions``),
    or None where the run names no database or psql cannot tell."""
    if not DATABASE or not PG_URL:
        return None
    try:
        argv = ["psql", PG_URL, "-Atc", sessions_query(DATABASE)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return int(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip().isdigit() else None


# Every judged request since the start: (seconds since start, service, response ms, server error, request).
requests: list[tuple[float, str, float, bool, str]] = []
started = time.monotonic()
judged: list[dict[str, Any]] = []


def _service(name: str) -> str | None:
    if not name.startswith("/api/"):
        return None  # setup and skipped steps, the gateway's own routes
    return OWNER.get(name.removeprefix("/api/").split("/", 1)[0].split("?", 1)[0])


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, response: Any = None, exception: Any = None, **_: Any
) -> None:
    service = _service(name)
    if service is not None:
        status = getattr(response, "status_code", 0) or 0
        failed = exception is not None and (status == 0 or status >= 500)
        requests.append((time.monotonic() - started, service, response_time, failed, f"{request_type} {name}"))


def judge(users: int, since: float, until: float, clock: CpuClock | None = None) -> dict[str, Any]:
    """Each service's p95 and server-error share between ``since`` and ``until`` against its SLO."""
    window = [r for r in requests if since <= r[0] < until]
    verdict: dict[str, Any] = {
        "users": users,
        "seconds": round(until - since, 1),
        "rps": round(len(window) / (until - since), 1),
        "requests": len(window),
        "services": {},
        "ok": True,
    }
    if clock is not None:
        verdict |= clock.since(len(window))
    for service, objective in OBJECTIVES.items():
        # The service's own latency objective over its routes but those it leaves out, then each
        # objective some routes have of their own (users' sign-ins), over those routes alone.
        scopes: list[tuple[str, float, RouteScope | None]] = [(service, objective["p95_ms"], _scope(objective))]
        scopes += [(f"{service} {side['name']}", side["p95_ms"], _scope(side)) for side in objective["side"]]
        mine = [r for r in window if r[1] == service]
        for label, threshold, scope in scopes:
            judged = [r for r in mine if scope is None or scope.counts(_route(r[4]))]
            if len(judged) < MINIMUM:
                continue
            verdict["services"][label] = _verdict(judged, threshold, objective["error_rate"])
            verdict["ok"] = verdict["ok"] and verdict["services"][label]["ok"]
    return verdict


def _scope(objective: dict[str, Any]) -> RouteScope | None:
    """The routes an objective counts (None: all the service's)."""
    if objective.get("only") or objective.get("except"):
        return RouteScope.model_validate({k: objective[k] for k in ("only", "except") if objective.get(k)})
    return None


def _route(request: str) -> str:
    """``GET /api/courses/[id]?x=[y]`` as the services label it: ``/courses/[id]``."""
    return request.split(" ", 1)[1].removeprefix("/api").split("?", 1)[0]


def _verdict(judged: list[tuple[float, str, float, bool, str]], threshold: float, error_rate: float) -> dict[str, Any]:
    """p95 and server errors of some requests against an objective, and which routes made the tail."""
    times = sorted(r[2] for r in judged)
    failed = sum(1 for r in judged if r[3])
    p95 = times[math.ceil(0.95 * len(times)) - 1]
    # Which requests make the tail: those slower than the objective, by route (the few that
    # decide a p95 over a minute's few hundred requests).
    served = Counter(r[4] for r in judged)
    slow = Counter(r[4] for r in judged if r[2] > threshold)
    return {
        "n": len(times),
        "p95_ms": round(p95, 1),
        "errors": failed,
        "ok": p95 <= threshold and failed / len(times) <= error_rate,
        "over_objective": {route: {"slow": n, "of": served[route]} for route, n in slow.most_common(3)},
    }


class Steps(LoadTestShape):
    """Double the students while every SLO holds; after the first failure, one step halfway back."""

    def __init__(self) -> None:
        super().__init__()
        self.levels = list(LEVELS)
        self.level = self.levels.pop(0)
        self.reached: float | None = None
        self.window: tuple[float, CpuClock] | None = None
        self.refined = False

    def tick(self) -> tuple[int, float] | None:
        now = time.monotonic() - started
        users = self.runner.user_count if self.runner is not None else 0
        if self.reached is None:
            if users == self.level:
                self.reached = now
        elif self.window is None:
            if now >= self.reached + SETTLE:
                self.window = (now, CpuClock())
        elif now >= self.window[0] + HOLD:
            verdict = judge(self.level, self.window[0], now, self.window[1])
            judged.append(verdict)
            following = self._next(verdict["ok"])
            if following is None:
                return None
            self.level, self.reached, self.window = following, None, None
        if self.get_run_time() >= SECONDS:
            return None
        return self.level, SPAWN_RATE

    def _next(self, ok: bool) -> int | None:
        if self.refined or (ok and not self.levels):
            return None
        if ok:
            return self.levels.pop(0)
        self.refined = True
        good = [v["users"] for v in judged if v["ok"]]
        low = max(good) if good else 0
        middle = (low + self.level) // 2
        return middle if low < middle < self.level else None


@events.quitting.add_listener
def _write(**_: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "students.json").write_text(json.dumps({"judged": judged}, indent=1) + "\n")
