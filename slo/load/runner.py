"""Runs Locust headless in its own process (gevent stays there) and, unless given a URL, the platform too.

Everything a run leaves is in its folder: ``stats_stats.csv``, ``stats_stats_history.csv``,
``stats_failures.csv``, ``stats.json`` (every response time), ``report.html`` (Locust's report),
``skipped.json`` (steps on prefixes not served yet), ``run.json`` (what ran, for how long, how
many users at the peak) and the logs.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from slo.load.shapes import shape

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
ROOT = Path(__file__).resolve().parents[2]
# The embedded platform started for a load: limits meant for people would stop a load test at
# its first minute, and production-strength password hashing would measure argon2, not the academy.
LOAD_ENVIRONMENT = {
    "REGISTER_LIMIT_PER_CLIENT": "100000/minute",
    "LOGIN_LIMIT_PER_CLIENT": "100000/minute",
    "RATE_LIMITS": "1000000/minute;10000000/hour",
    "PASSWORD_TIME_COST": "1",
    "PASSWORD_MEMORY_KIB": "8192",
}


@dataclass(frozen=True)
class LoadPlan:
    users: int
    duration: float
    shape: str
    out: Path
    url: str | None = None
    think: tuple[float, float] = (1.0, 5.0)
    strict: bool = False
    accounts: Path | None = None
    pool: Path | None = None
    """Accounts and tokens made before the run (`cerebrum seed students`); None: students register on arrival."""
    pool_size: int = 0
    """With no URL and no pool file: this many accounts are made in the started platform before the run."""
    run_id: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:8]}")


@dataclass
class RunSummary:
    run_id: str
    url: str
    shape: str
    users: int
    peak_users: int
    duration: float
    seconds: float
    started_at: str
    finished_at: str
    locust_exit_code: int
    requests: int
    failures: int
    skipped: dict[str, int]
    files: list[str]
    host: dict[str, float]
    """CPUs and the highest 1-minute load average seen: latency from an oversubscribed host is suspect."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_platform(log_path: Path, console: Console) -> Iterator[tuple[str, Path]]:
    """Starts `cerebrum up` on a free port; yields its URL and its demo accounts file.

    Its data (SQLite files, signing keys, demo passwords) lives in a temporary folder removed
    afterwards: a run folder is meant to be kept and shared (a CI artifact), its log with it.
    """
    with tempfile.TemporaryDirectory(prefix="cerebrum-load-") as scratch:
        with _platform(Path(scratch), log_path, console) as started:
            yield started


@contextmanager
def _platform(data_dir: Path, log_path: Path, console: Console) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "RABBITMQ_"))}
    env.update(LOAD_ENVIRONMENT)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    log = log_path.open("w")
    command = [sys.executable, "-m", "cerebrum.cli", "up", "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    try:
        with console.status(f"starting the embedded platform at {url}"):
            wait_healthy(url, process, log_path)
        console.print(f"embedded platform at {url} (log: {log_path})")
        yield url, data_dir / "demo-accounts.json"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


WARM_UP_PATHS = (
    "/api/courses",
    "/api/courses/search?q=genetics",
    "/api/curriculum/11",
    "/api/users/profile",
    "/api/questions/random?topic=genetics&count=10&attempt_id={attempt}",
    "/api/leaderboard/genetics",
)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 120) -> None:
    """Waits for a platform process to answer /health; raises, naming its log, if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the platform exited ({process.returncode}); see {log_path}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the platform did not answer /health in {timeout:.0f} s; see {log_path}")
        time.sleep(0.3)


def warm_up(url: str, accounts: Path, rounds: int = 3) -> None:
    """A few requests on the main routes before the measured load, as the demo student.

    A freshly started process compiles its queries and imports lazily on its first requests; a
    short load would otherwise measure that start, not the academy.
    """
    marks = {"X-Synthetic": "warm-up"}
    with httpx.Client(base_url=url, timeout=30, headers=marks) as client:
        student = json.loads(accounts.read_text())["student"] if accounts.exists() else None
        if student is not None:
            login = client.post("/api/auth/login", json=student)
            if login.status_code == 200:
                client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        for _ in range(rounds):
            for path in WARM_UP_PATHS:
                client.get(path.format(attempt=uuid.uuid4()))


def _history(path: Path) -> dict[str, float]:
    """The latest aggregated row of Locust's stats history, and the peak user count so far."""
    latest: dict[str, float] = {"peak": 0.0}
    if not path.exists():
        return latest
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") != "Aggregated":
                continue
            try:
                users = float(row["User Count"])
                latest = {
                    "users": users,
                    "requests": float(row["Total Request Count"]),
                    "failures": float(row["Total Failure Count"]),
                    "rps": float(row["Requests/s"]),
                    "peak": max(latest["peak"], users),
                }
            except (KeyError, ValueError):
                continue
    return latest


def seed_pool(data_dir: Path, count: int, out: Path, console: Console) -> Path:
    """`cerebrum seed students` into the embedded platform's data folder (its users database and key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "RABBITMQ_"))}
    env |= {**LOAD_ENVIRONMENT, "DATA_DIR": str(data_dir), "OBSERVABILITY": "off"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-m", "cerebrum.cli", "seed", "students", "--count", str(count), "--out", str(out)]
    with console.status(f"making {count:,} student accounts and their tokens"):
        done = subprocess.run(command, env=env, cwd=data_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cerebrum seed students failed: {done.stderr.strip()[-500:]}")
    return out


def _locust(
    plan: LoadPlan, url: str, accounts: Path | None, console: Console, pool: Path | None = None
) -> tuple[int, float, float]:
    out = plan.out
    env = dict(os.environ)
    env.update(
        {
            "LOAD_RUN_ID": plan.run_id,
            "LOAD_SHAPE": plan.shape,
            "LOAD_USERS": str(plan.users),
            "LOAD_DURATION": str(plan.duration),
            "LOAD_THINK_MIN": str(plan.think[0]),
            "LOAD_THINK_MAX": str(plan.think[1]),
            "LOAD_STRICT": "1" if plan.strict else "0",
            "LOAD_OUT": str(out),
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
    )
    if accounts is not None and accounts.exists():
        env["LOAD_ACCOUNTS"] = str(accounts)
    if pool is not None:
        env["LOAD_POOL"] = str(pool)
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--csv", str(out / "stats"), "--html", str(out / "report.html"), "--json-file", str(out / "stats"),
        "--only-summary", "--logfile", str(out / "locust.log"), "--stop-timeout", "5",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    history = out / "stats_stats_history.csv"
    with (out / "locust.out").open("w") as stdout:
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.STDOUT)
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[line]}"),
        ]
        try:
            with Progress(*columns, console=console, transient=False) as progress:
                bar = progress.add_task(f"{plan.shape} load", total=plan.duration, line="starting")
                started, load = time.monotonic(), os.getloadavg()[0]
                while process.poll() is None:
                    time.sleep(0.5)
                    load = max(load, os.getloadavg()[0])
                    h = _history(history)
                    line = (
                        f"{h.get('users', 0):.0f} users  {h.get('requests', 0):.0f} requests  "
                        f"{h.get('failures', 0):.0f} failures  {h.get('rps', 0):.1f} req/s"
                    )
                    progress.update(bar, completed=min(time.monotonic() - started, plan.duration), line=line)
                progress.update(bar, completed=plan.duration)
        finally:
            # Interrupted (Ctrl-C, an error), Locust would run on against a platform being stopped.
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    return process.returncode, time.monotonic() - started, load


def run(plan: LoadPlan, console: Console) -> RunSummary:
    """Runs the plan; returns what ran and writes it to ``run.json`` in the run's folder."""
    shape(plan.shape, plan.users, plan.duration)  # refuses an unknown shape before anything starts
    plan.out.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    if plan.url is None:
        with embedded_platform(plan.out / "platform.log", console) as (url, accounts):
            pool = plan.pool
            if pool is None and plan.pool_size > 0:
                pool = seed_pool(accounts.parent, plan.pool_size, accounts.parent / "student-pool.json", console)
            warm_up(url, accounts)
            code, seconds, load = _locust(plan, url, accounts, console, pool)
    else:
        url = plan.url.rstrip("/")
        code, seconds, load = _locust(plan, url, plan.accounts, console, plan.pool)
    history = _history(plan.out / "stats_stats_history.csv")
    skipped_file = plan.out / "skipped.json"
    summary = RunSummary(
        run_id=plan.run_id,
        url=url,
        shape=plan.shape,
        users=plan.users,
        peak_users=int(history["peak"]),
        duration=plan.duration,
        seconds=round(min(seconds, plan.duration), 3),
        started_at=started_at.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        locust_exit_code=code,
        requests=int(history.get("requests", 0)),
        failures=int(history.get("failures", 0)),
        skipped=json.loads(skipped_file.read_text()) if skipped_file.exists() else {},
        files=sorted(p.name for p in plan.out.iterdir() if p.is_file()),
        host={"cpus": float(os.cpu_count() or 1), "load_average_max": round(load, 2)},
    )
    (plan.out / "run.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    report = plan.out / "report.html"
    if report.exists():
        # A file:// link: a click in most terminals opens Locust's charts in the browser.
        console.print(f"Locust's HTML report: [link={report.as_uri()}]{report}[/link]")
    else:
        console.print(f"[yellow]Locust wrote no HTML report[/]; see {plan.out / 'locust.log'}")
    return summary
