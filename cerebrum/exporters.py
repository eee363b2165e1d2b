"""The exporters the alert rules read beside the services' own metrics (``up --distributed --exporters``).

``DatabaseConnectionsHigh`` reads ``pg_stat_activity_count`` (postgres_exporter) and ``ConsumerLag``
reads ``rabbitmq_queue_messages_ready`` per queue (RabbitMQ's ``rabbitmq_prometheus`` plugin): the
services cannot see the server's connections from every client, nor a queue's depth when their
consumer is the thing that stopped, so these come from the servers themselves, as in compose and
Kubernetes. postgres_exporter runs as a process of the run, on a port of its base. The plugin runs
inside the broker and listens on the broker's port (15692), shared by every run on that broker;
on a broker on this machine that lacks it, it is enabled online (the broker keeps running).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import make_url

from cerebrum.ports import Ports

POSTGRES_EXPORTER = "prometheus-postgres-exporter"
"""Debian's name for postgres_exporter (``make tools`` installs it)."""
RABBITMQ_PROMETHEUS_PORT = 15692
RABBITMQ_PER_QUEUE_PATH = "/metrics/per-object"
"""Per-queue series (the ``queue`` label ConsumerLag groups by); the plain /metrics sums every queue."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    job: str
    address: str
    """host:port, as Prometheus's static_configs take it."""
    path: str = "/metrics"

    @property
    def url(self) -> str:
        return f"http://{self.address}{self.path}"


def postgres_data_source(database_url: str) -> str:
    """DATABASE_URL as the libpq URL postgres_exporter reads (no SQLAlchemy driver, an explicit sslmode).

    Its driver requires TLS unless told otherwise; a server on this machine is spoken to in clear,
    as the services' asyncpg does.
    """
    url = make_url(database_url).set(drivername="postgresql")
    query = dict(url.query)
    ssl = query.pop("ssl", None)
    if "sslmode" not in query:
        query["sslmode"] = str(ssl) if ssl else ("disable" if url.host in LOOPBACK else "require")
    return url.set(query=query).render_as_string(hide_password=False)


def postgres_exporter_command(ports: Ports) -> list[str]:
    """The exporter's command line; its data source goes in the environment, never on the command line."""
    binary = shutil.which(POSTGRES_EXPORTER) or shutil.which("postgres_exporter")
    if binary is None:
        raise FileNotFoundError(
            f"{POSTGRES_EXPORTER} is not installed: `make tools`, or apt-get install {POSTGRES_EXPORTER}"
        )
    return [binary, f"--web.listen-address=127.0.0.1:{ports.postgres_exporter}"]


def postgres_exporter_environment(env: dict[str, str]) -> dict[str, str]:
    return {"PATH": env.get("PATH", os.defpath), "DATA_SOURCE_NAME": postgres_data_source(env["DATABASE_URL"])}


def rabbitmq_target(rabbitmq_url: str) -> Target:
    host = urlsplit(rabbitmq_url).hostname or "127.0.0.1"
    return Target("rabbitmq", f"{host}:{RABBITMQ_PROMETHEUS_PORT}", RABBITMQ_PER_QUEUE_PATH)


def serves(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_rabbitmq_metrics(rabbitmq_url: str, *, timeout: float = 60) -> tuple[Target, str | None]:
    """The broker's metrics target, enabling the plugin on a broker of this machine if it lacks it.

    Returns the target and, when the broker does not serve it, what to do about it.
    """
    target = rabbitmq_target(rabbitmq_url)
    if serves(target.url):
        return target, None
    host = target.address.rsplit(":", 1)[0]
    if host not in LOOPBACK or shutil.which("rabbitmq-plugins") is None:
        return target, f"enable it on the broker: rabbitmq-plugins enable rabbitmq_prometheus (serves {target.url})"
    # --online: the running node starts the plugin; the broker and its connections stay up.
    done = subprocess.run(
        ["rabbitmq-plugins", "enable", "--online", "rabbitmq_prometheus"], capture_output=True, timeout=timeout
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serves(target.url):
            return target, None
        time.sleep(0.5)
    said = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
    return target, f"rabbitmq-plugins enable rabbitmq_prometheus did not make {target.url} answer: {said}"


def scrape_targets(ports: Ports, *, monolith: bool, exporters: bool, rabbitmq_url: str | None) -> list[Target]:
    """Every target of a distributed run: one job per process, named after it (``up{job="users"}``)."""
    targets = [Target("gateway", f"127.0.0.1:{ports.gateway}")]
    targets += [Target(name, f"127.0.0.1:{port}") for name, port in ports.services.items()]
    if monolith:
        targets.append(Target("monolith", f"127.0.0.1:{ports.monolith}"))
    if exporters:
        targets.append(Target("postgres", f"127.0.0.1:{ports.postgres_exporter}"))
        if rabbitmq_url:
            targets.append(rabbitmq_target(rabbitmq_url))
    return targets


def prometheus_config(targets: list[Target], *, interval: str = "15s") -> dict[str, Any]:
    """A Prometheus configuration for the run: its targets and the repository's rule files."""
    rules = ROOT / "alerts"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules / "*.yml"), str(rules / "slo" / "*.yml")] if rules.is_dir() else [],
        "scrape_configs": [
            {"job_name": t.job, "metrics_path": t.path, "static_configs": [{"targets": [t.address]}]} for t in targets
        ],
    }
