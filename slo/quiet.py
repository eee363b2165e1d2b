"""``cerebrum slo quiet``: no page under quiet traffic, judged by a real Prometheus with the deployed rules.

Starts the embedded platform with production password hashing (argon2id at the users service's
own cost, so every login takes its real ~300 ms) and a Prometheus of the run's own
(``chaos.prometheus.RunPrometheus``: the repository's rule files, ``for:`` as written, 5 s
intervals) with its alert watcher, then runs a few students at a realistic think time for the
chosen minutes: the Locust scenarios, with logins again now and then. Any alert ever pending or
firing in that time is the verdict; so is a target that was never scraped, since a Prometheus that
saw nothing stays quiet too. ``fault`` (for the harness's own test) injects a 100% error on one
route through the platform's fault injection, so that the same harness is shown to catch a page.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from chaos.prometheus import AlertWatcher, RunPrometheus
from slo.load.runner import ROOT, LoadPlan, _free_port, _locust, wait_healthy, warm_up
from slo.quiet_report import Verdict, judge

# The users service's own argon2id cost (services/users/settings.py), set explicitly so that an
# environment tuned for tests cannot make logins cheap here.
PRODUCTION_HASHING = {"PASSWORD_TIME_COST": "3", "PASSWORD_MEMORY_KIB": str(64 * 1024)}
SERVED = 'route!~"/health|/ready|/metrics"'
# Scrapes and evaluations every 5 s (the deployed Prometheus uses 15 s): a scrape that waits for a
# busy process is not a target down, as a 1 s timeout would make it on a shared host.
QUIET_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True)
class Fault:
    """A 100% error on one route of one service, for the whole traffic phase."""

    service: str
    route: str
    status: int = 503


@dataclass(frozen=True)
class QuietPlan:
    minutes: float
    out: Path
    students: int = 4
    think: tuple[float, float] = (5.0, 15.0)
    login_weight: int = 1
    fault: Fault | None = None
    chaos_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))


@contextmanager
def embedded(plan: QuietPlan, console: Console) -> Iterator[tuple[str, Path]]:
    """`cerebrum up` on a free port with production hashing and fault injection; its URL and accounts."""
    with tempfile.TemporaryDirectory(prefix="cerebrum-quiet-") as scratch:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "RABBITMQ_"))}
        env.update(PRODUCTION_HASHING)
        env.update({"CHAOS_ENABLED": "true", "CHAOS_TOKEN": plan.chaos_token, "OTEL_TRACES_EXPORTER": "none"})
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        log_path = plan.out / "platform.log"
        command = [sys.executable, "-m", "cerebrum.cli", "up", "--port", str(port), "--data-dir", scratch]
        with log_path.open("w") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=scratch)
            try:
                wait_healthy(url, process, log_path)
                console.print(f"embedded platform at {url} (log: {log_path})")
                yield url, Path(scratch) / "demo-accounts.json"
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def inject(url: str, fault: Fault, token: str) -> None:
    """Sets the fault on the service's board (the embedded platform's ``/chaos/<service>/faults``)."""
    spec = {"kind": "error", "routes": [fault.route], "percent": 100, "status": fault.status}
    reply = httpx.put(
        f"{url}/chaos/{fault.service}/faults", json={"faults": [spec]}, headers={"X-Chaos-Token": token}, timeout=10
    )
    reply.raise_for_status()


def scraped(prometheus: str, window_seconds: float) -> dict[str, Any]:
    """Every target's health and the served requests Prometheus counted in the run, per service."""
    with httpx.Client(base_url=prometheus, timeout=10) as client:
        targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
        query = f"sum by (service) (increase(http_requests_total{{{SERVED}}}[{max(int(window_seconds), 10)}s]))"
        counted = client.get("/api/v1/query", params={"query": query}).json()["data"]["result"]
    return {
        "targets": [
            {"job": t["labels"]["job"], "health": t["health"], "last_scrape": t["lastScrape"], "error": t["lastError"]}
            for t in targets
        ],
        "requests": {r["metric"].get("service", "?"): round(float(r["value"][1])) for r in counted},
    }


def run(plan: QuietPlan, console: Console) -> Verdict:
    """Runs the plan; writes ``quiet.json`` (and the watcher's ``alerts.jsonl``) into ``plan.out``."""
    plan.out.mkdir(parents=True, exist_ok=True)
    seconds = plan.minutes * 60
    prometheus = RunPrometheus(
        plan.out / "prometheus", interval=QUIET_INTERVAL_SECONDS, evaluation=QUIET_INTERVAL_SECONDS
    )
    watcher: AlertWatcher | None = None
    with embedded(plan, console) as (url, accounts):
        try:
            # Before Prometheus's first scrape: a fresh process's first requests (imports, query
            # compilation) are a start-up cost, not the academy's latency, and rate() never sees them.
            warm_up(url, accounts)
            prometheus.start({"cerebrum": url})
            console.print(f"Prometheus at {prometheus.url} with {', '.join(p.name for p in prometheus.rule_files)}")
            if plan.fault is not None:
                inject(url, plan.fault, plan.chaos_token)
                console.print(f"[yellow]fault:[/] 100% {plan.fault.status} on {plan.fault.service} {plan.fault.route}")
            watcher = AlertWatcher(prometheus.url, plan.out)
            started = time.time()
            watcher.start()
            load = LoadPlan(
                users=plan.students, duration=seconds, shape="steady", out=plan.out / "load", think=plan.think
            )
            load.out.mkdir(parents=True, exist_ok=True)
            os.environ["LOAD_LOGIN_WEIGHT"] = str(plan.login_weight)
            try:
                code, _, _ = _locust(load, url, accounts, console)
            finally:
                os.environ.pop("LOAD_LOGIN_WEIGHT", None)
            time.sleep(2 * QUIET_INTERVAL_SECONDS)  # the last requests' scrape and evaluation
            watcher.stop()
            seen = scraped(prometheus.url, time.time() - started)
            verdict = judge(watcher.observed(), seen, started=started, locust_exit_code=code)
        finally:
            if watcher is not None:
                watcher.stop()
            prometheus.stop()
    (plan.out / "quiet.json").write_text(json.dumps({"plan": _plan_json(plan), **asdict(verdict)}, indent=2) + "\n")
    return verdict


def _plan_json(plan: QuietPlan) -> dict[str, Any]:
    described = asdict(plan)
    described.pop("chaos_token")
    described["out"] = str(plan.out)
    return described
