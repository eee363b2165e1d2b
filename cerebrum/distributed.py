"""Distributed mode: every service in its own process, on PostgreSQL, Redis and RabbitMQ.

Migrations run first and every consumer's queue is declared before any service starts, so no
event published early is dropped for want of a queue. Ctrl-C stops every process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cerebrum.registry import SERVICES

REQUIRED = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")


@dataclass
class Process:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def missing_environment() -> list[str]:
    return [name for name in REQUIRED if not os.environ.get(name)]


def declare_queues() -> None:
    """Declares each consumer's queues on the broker before any service publishes."""
    from services.kit.events.rabbitmq import RabbitBus

    bus = RabbitBus(os.environ["RABBITMQ_URL"])
    for spec in SERVICES.values():
        if spec.consumes:
            bus.declare(spec.name, spec.consumes)


def start(name: str, port: int, log_dir: Path, env: dict[str, str]) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    argv = [sys.executable, "-m", "cerebrum.cli", "serve", name, "--port", str(port), "--no-migrate"]
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, port, popen, log)


def status(process: Process) -> str:
    if process.popen.poll() is not None:
        return f"[red]exited ({process.popen.returncode})[/]"
    try:
        ready = httpx.get(process.url + "/ready", timeout=2)
    except httpx.HTTPError:
        return "[yellow]starting[/]"
    if ready.status_code == 200:
        return "[green]ready[/]"
    failed = ready.json().get("failed", []) if ready.headers.get("content-type", "").endswith("json") else []
    return f"[yellow]not ready: {', '.join(failed) or ready.status_code}[/]"


def table(processes: list[Process]) -> Table:
    view = Table(title="Cerebrum, distributed")
    for column in ("process", "address", "health", "log"):
        view.add_column(column)
    for process in processes:
        view.add_row(process.name, process.url, status(process), str(process.log))
    return view


def run(*, port: int, log_dir: Path, monolith_port: int | None, console: Console) -> int:
    """Starts every service and the gateway; shows their health until Ctrl-C, then stops them all."""
    missing = missing_environment()
    if missing:
        console.print(f"[red]Distributed mode needs {', '.join(missing)}[/] (PostgreSQL, Redis, RabbitMQ URLs).")
        return 2
    import asyncio

    from cerebrum.runner import migrate

    console.print("migrating every service's schema…")
    asyncio.run(migrate(None, console=console))
    declare_queues()
    env = dict(os.environ)
    env.setdefault("TRUSTED_PROXIES", '["127.0.0.1"]')  # the gateway, which passes the student's address on
    for name, spec in SERVICES.items():
        env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{spec.port}"
    processes = [start(name, spec.port, log_dir, env) for name, spec in SERVICES.items()]
    if monolith_port is not None:
        monolith_env = {k: v for k, v in env.items() if k not in ("RABBITMQ_URL",)}
        argv = [sys.executable, "-m", "cerebrum.cli", "up", "--port", str(monolith_port), "--no-demo"]
        log = log_dir / "monolith.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv, env=monolith_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        processes.append(Process("monolith", monolith_port, popen, log))
        env["MONOLITH_URL"] = f"http://127.0.0.1:{monolith_port}"
    processes.append(start("gateway", port, log_dir, env))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        with Live(table(processes), console=console, refresh_per_second=1) as live:
            while not stopping:
                time.sleep(1)
                live.update(table(processes))
        return 0
    finally:
        console.print("stopping…")
        for process in processes:
            if process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
        console.print("every process stopped")
