"""Distributed mode: every service in its own process, on PostgreSQL, Redis and RabbitMQ.

Migrations run first and every consumer's queue is declared before any service starts, so no
event published early is dropped for want of a queue. Ctrl-C stops every process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cerebrum.exporters import (
    ensure_rabbitmq_metrics,
    postgres_exporter_command,
    postgres_exporter_environment,
    prometheus_config,
    scrape_targets,
)
from cerebrum.ports import Ports, in_use
from cerebrum.registry import SERVICES

REQUIRED = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")


@dataclass
class Process:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    probe: str = "/ready"
    """Where it says it can serve: /ready for ours, /metrics for an exporter."""

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
    argv = [sys.executable, "-m", "cerebrum.cli", "serve", name, "--port", str(port), "--no-migrate"]
    return spawn(name, port, argv, log_dir, env)


def spawn(name: str, port: int, argv: list[str], log_dir: Path, env: dict[str, str], probe: str = "/ready") -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, port, popen, log, probe)


def start_exporters(ports: Ports, log_dir: Path, env: dict[str, str], console: Console) -> list[Process]:
    """postgres_exporter on the run's own port, and RabbitMQ's plugin on the broker (enabled if need be)."""
    argv = postgres_exporter_command(ports)
    exporter = spawn(
        "postgres-exporter", ports.postgres_exporter, argv, log_dir, postgres_exporter_environment(env), "/metrics"
    )
    target, problem = ensure_rabbitmq_metrics(env["RABBITMQ_URL"])
    if problem:
        console.print(f"[yellow]RabbitMQ serves no metrics, so ConsumerLag cannot fire[/]: {problem}")
    else:
        console.print(f"RabbitMQ's per-queue metrics: {target.url}")
    return [exporter]


def status(process: Process) -> str:
    if process.popen.poll() is not None:
        return f"[red]exited ({process.popen.returncode})[/]"
    try:
        ready = httpx.get(process.url + process.probe, timeout=2)
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


def run(
    *,
    ports: Ports,
    log_dir: Path,
    monolith: bool,
    exporters: bool,
    console: Console,
    prometheus_file: Path | None = None,
) -> int:
    """Starts every service and the gateway; shows their health until Ctrl-C, then stops them all."""
    missing = missing_environment()
    if missing:
        console.print(f"[red]Distributed mode needs {', '.join(missing)}[/] (PostgreSQL, Redis, RabbitMQ URLs).")
        return 2
    wanted = [ports.gateway, *ports.services.values()]
    wanted += [ports.monolith] if monolith else []
    wanted += [ports.postgres_exporter] if exporters else []
    taken = in_use(wanted)
    if taken:
        console.print(
            f"[red]ports {', '.join(map(str, taken))} are in use[/] (another run?): "
            f"choose another --base-port; this run needs {min(wanted)}-{max(wanted)}"
        )
        return 2
    if exporters:
        try:
            postgres_exporter_command(ports)
        except FileNotFoundError as missing_binary:
            console.print(f"[red]{missing_binary}[/]")
            return 2
    import asyncio

    from cerebrum.runner import migrate

    console.print("migrating every service's schema…")
    asyncio.run(migrate(None, console=console))
    declare_queues()
    env = dict(os.environ)
    env.setdefault("TRUSTED_PROXIES", '["127.0.0.1"]')  # the gateway, which passes the student's address on
    upstreams = {name: f"http://127.0.0.1:{port}" for name, port in ports.services.items()}
    env["UPSTREAMS"] = json.dumps(upstreams)
    env.update({f"{name.upper()}_URL": url for name, url in upstreams.items()})
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes: list[Process] = []
    try:
        processes += [start(name, port, log_dir, env) for name, port in ports.services.items()]
        if monolith:
            monolith_env = {k: v for k, v in env.items() if k not in ("RABBITMQ_URL",)}
            argv = [sys.executable, "-m", "cerebrum.cli", "up", "--port", str(ports.monolith), "--no-demo"]
            processes.append(spawn("monolith", ports.monolith, argv, log_dir, monolith_env))
            env["MONOLITH_URL"] = f"http://127.0.0.1:{ports.monolith}"
        # The gateway itself believes only the proxies this shell names: its peers are the students.
        gateway_env = {**env, "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES", "")}
        processes.append(start("gateway", ports.gateway, log_dir, gateway_env))
        if prometheus_file is not None:
            # Written before the exporters start: it needs only the ports, and enabling RabbitMQ's
            # plugin can take a while, during which the services are already answering.
            rabbitmq = env["RABBITMQ_URL"] if exporters else None
            targets = scrape_targets(ports, monolith=monolith, exporters=exporters, rabbitmq_url=rabbitmq)
            prometheus_file.parent.mkdir(parents=True, exist_ok=True)
            prometheus_file.write_text(yaml.safe_dump(prometheus_config(targets), sort_keys=False))
            console.print(f"Prometheus configuration for this run: prometheus --config.file={prometheus_file}")
        if exporters:
            processes += start_exporters(ports, log_dir, env, console)
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
