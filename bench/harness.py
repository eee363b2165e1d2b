"""Running servers pinned to one core and wrk pinned to the other, and reading wrk's answers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

OUT = Path("bench/out")
CORES = os.cpu_count() or 1
SERVER_CPU = "0"
LOAD_CPU = "1" if CORES > 1 else "0"
SERVER_CORES = os.environ.get("BENCH_SERVER_CORES", "one")
"""``one``: servers on core 0, load generators on core 1. ``both``: nothing is pinned; servers and load
generators share every core (the load generator's own share is still read and reported)."""
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
_PASSWORD_IN_URL = re.compile(r"//([^:/@]+):[^@]+@")
COMMANDS: list[str] = []
"""Every load and server command the run gave, in order, for results.json."""


def cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds ``process`` has used, all its threads (ended ones too), to the nanosecond where Linux allows.

    /proc's user and system times, which psutil reads, count in ticks of 10 ms. Read before and
    after a few dozen requests, a tick is hundreds of microseconds a request, in every process
    read, and a process that did nothing can read a tick either way. The kernel's own clock of a
    process's CPU time (``clock_gettime`` on its CPU clock, ``CPUCLOCK_SCHED``) has no such step.
    """
    try:
        return time.clock_gettime((~process.pid << 3) | _CPUCLOCK_SCHED)
    except (OSError, AttributeError):  # not Linux, or the process has gone: psutil says which
        times = process.cpu_times()
        return float(times.user + times.system)


_CPUCLOCK_SCHED = 2
"""The process-wide clock of ``clock_getcpuclockid`` (Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""


@contextmanager
def otlp_sink(*, record: bool = False) -> Iterator[int]:
    """``bench.otlp_sink`` on a free port for the platforms' traces, stopped afterwards; yields the port."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.otlp_sink", str(port)]
    if record:
        COMMANDS.append(" ".join(argv))
    sink = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        sink.terminate()


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    command: str
    requests: int = 0


@dataclass
class Running:
    """A server process started by the bench: its address, its process and its log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apt_install(command: str, package: str) -> str:
    """Finds a command, installing its Debian package when it is missing and we may."""
    found = shutil.which(command)
    if found:
        return found
    print(f"bench: installing {package} (Debian package)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    found = shutil.which(command) or (f"/usr/sbin/{command}" if Path(f"/usr/sbin/{command}").exists() else None)
    if not found:
        raise SystemExit(f"bench needs {command}: apt-get install {package}")
    return found


def ensure_wrk() -> str:
    return apt_install("wrk", "wrk")


@contextmanager
def server_cores(arrangement: str) -> Iterator[None]:
    """What starts in the block runs so: "one" (servers on core 0, load generators on core 1) or "both"."""
    global SERVER_CORES
    before, SERVER_CORES = SERVER_CORES, arrangement
    try:
        yield
    finally:
        SERVER_CORES = before


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if SERVER_CORES == "one" and shutil.which("taskset") else argv


def pin(pid: int, cpu: str) -> None:
    """Moves every thread of a running process to one core (taskset at start pins only new ones)."""
    if SERVER_CORES != "one":
        return
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tasks:
        try:
            os.sched_setaffinity(int(tid), {int(cpu)})
        except OSError:
            pass


def wait_ready(url: str, probe: str, process: subprocess.Popen[bytes], *, timeout: float = 90, name: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + probe, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: {name or url} did not start; see its log in {OUT}")
        time.sleep(0.2)


def start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    *,
    cpu: str | None = SERVER_CPU,
    whole_env: bool = False,
    cwd: Path | None = None,
) -> Running:
    """Starts a server process with its output in bench/out/<name>.log, pinned to ``cpu`` when given.

    ``env`` is added to this process's environment, or replaces it with ``whole_env``.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    log = OUT / f"{safe}.log"
    with open(log, "wb") as out:
        command = pinned(cpu, argv) if cpu is not None else argv
        full = env if whole_env else {**os.environ, **env}
        process = subprocess.Popen(command, env=full, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    record(pinned(cpu or SERVER_CPU, argv), env)  # started anywhere, pinned once ready
    return Running(name, f"http://127.0.0.1:{port}", process, log, command)


def stop(running: Running) -> None:
    if running.process.poll() is None:
        running.process.terminate()
    try:
        running.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait()


def uvicorn_argv(target: str, port: int) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    return [*argv, "--no-access-log", "--log-level", "warning", "--no-server-header"]


def record(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Adds a command to results.json: the variables it was given (passwords masked), then the command."""
    given = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    masked = {k: _PASSWORD_IN_URL.sub(r"//\1:***@", v) for k, v in given.items()}
    shown_env = [f"{k}={shlex.quote(v)}" for k, v in masked.items()]
    COMMANDS.append(" ".join([*shown_env, shown(argv)]))


@contextmanager
def servers(specs: dict[str, dict[str, str]], probe: str) -> Iterator[dict[str, Running]]:
    """Runs ``bench.apps:app`` once per named environment; all start together, then move to the server core."""
    started: dict[str, Running] = {}
    try:
        for name, env in specs.items():
            port = free_port()
            started[name] = start(name, uvicorn_argv("bench.apps:app", port), env, port, cpu=None)
        for running in started.values():
            wait_ready(running.url, probe, running.process, timeout=90, name=running.name)
            pin(running.pid, SERVER_CPU)
        yield started
    finally:
        for running in started.values():
            stop(running)


@contextmanager
def server(name: str, env: dict[str, str], probe: str) -> Iterator[Running]:
    """Runs ``bench.apps:app`` under uvicorn on the server core until the block ends."""
    with servers({name: env}, probe) as started:
        yield started[name]


_SCRIPT = """{setup}
function done(summary, latency, requests)
  io.write(string.format("BENCH-JSON {{\\"p50\\": %.1f, \\"p95\\": %.1f, \\"p99\\": %.1f, \\"non2xx\\": %d, ",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.errors.status))
  io.write(string.format("\\"errors\\": %d}}\\n", summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(method: str = "GET", body: str | None = None) -> Path:
    """A wrk Lua script sending ``method`` with ``body`` and printing p50/p95/p99 as JSON when done."""
    setup = [f"wrk.method = {_lua(method)}"]
    if body is not None:
        setup += [f"wrk.body = {_lua(body)}", 'wrk.headers["Content-Type"] = "application/json"']
    text = _SCRIPT.format(setup="\n".join(setup))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"wrk-{hashlib.sha1(text.encode()).hexdigest()[:10]}.lua"
    path.write_text(text)
    return path


def shown(argv: list[str]) -> str:
    """The command as recorded: bearer tokens replaced by a placeholder."""
    return " ".join("'Authorization: Bearer $TOKEN'" if a.startswith("Authorization") else shlex.quote(a) for a in argv)


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int = 16,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    record: bool = True,
) -> WrkResult:
    """Runs wrk on the load core and reads throughput and latency percentiles."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(wrk_script(method, body))]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(url)
    out = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    served = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    found = json.loads(re.search(r"BENCH-JSON (\{.*\})", out).group(1))  # type: ignore[union-attr]
    command = shown(argv)
    if record:
        COMMANDS.append(command)
    return WrkResult(
        requests_per_s=rps,
        p50_ms=found["p50"] / 1000,
        p95_ms=found["p95"] / 1000,
        p99_ms=found["p99"] / 1000,
        non_2xx=int(found["non2xx"]),
        errors=int(found["errors"]),
        command=command,
        requests=served,
    )


def rabbitmqctl(*args: str) -> None:
    """``rabbitmqctl -q …`` against the machine's RabbitMQ (vhosts of a run's own)."""
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def sessions_query(database: str) -> str:
    """The count of connections PostgreSQL has opened to ``database`` so far (its statistics' ``sessions``)."""
    return f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'"


async def sql_count(query: str, url: str = PG_URL) -> int:
    """A count: the first column of a query's first row (0 for none or NULL), on its own connection."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(query) or 0)
    finally:
        await conn.close()


async def sql(statement: str, url: str = PG_URL) -> None:
    """One statement on its own connection (databases and schemas made and dropped by a run)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
