"""`cerebrum up --distributed` on a base port of its own, with its own database, vhost and key prefix."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from cerebrum.ports import Ports
from tests.conftest import PG_URL, REDIS_URL, require_server

CEREBRUM = [sys.executable, "-m", "cerebrum.cli"]
READY_SECONDS = 150  # eight processes importing every service, on a shared 2-core machine


@dataclass
class Running:
    ports: Ports
    env: dict[str, str]
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def output(self) -> str:
        logs = sorted((self.data_dir / "logs").glob("*.log"))
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs)


def sql(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _ready(running: Running) -> bool:
    urls = [running.gateway, *(f"http://127.0.0.1:{port}" for port in running.ports.services.values())]
    try:
        return all(httpx.get(url + "/ready", timeout=2).status_code == 200 for url in urls)
    except httpx.HTTPError:
        return False


def wait_ready(running: Running) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not _ready(running):
        if running.process.poll() is not None or time.monotonic() > deadline:
            said = (running.data_dir / "up.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"the distributed platform on base port {running.ports.base} did not become ready\n{said}")
        time.sleep(0.5)


@contextmanager
def distributed(data_dir: Path, base_port: int, *options: str, wait: bool = True) -> Iterator[Running]:
    """Starts the platform, waits until every process is ready, and always stops it and drops its data.

    With ``wait=False`` it returns as soon as it is started (to start another beside it): call
    ``wait_ready`` before using it.
    """
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    database, vhost = f"t_{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update(
        DATABASE_URL=PG_URL.rsplit("/", 1)[0] + f"/{database}",
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"test:{uuid.uuid4().hex[:8]}:",
        RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        ENVIRONMENT="test",
        PASSWORD_TIME_COST="1",
        PASSWORD_MEMORY_KIB="1024",
        DATA_DIR=str(data_dir),
        OTEL_TRACES_EXPORTER="none",
    )
    sql(f'CREATE DATABASE "{database}"')
    process: subprocess.Popen[bytes] | None = None
    try:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        argv = [*CEREBRUM, "up", "--distributed", "--base-port", str(base_port), "--data-dir", str(data_dir)]
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / "up.log").open("wb") as out:
            process = subprocess.Popen(
                [*argv, *options], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        running = Running(Ports.layout(base_port), env, data_dir, process)
        if wait:
            wait_ready(running)
        yield running
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
        forget_keys(env["REDIS_KEY_PREFIX"])


def forget_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        for pattern in (prefix + "*", "LIMITS:" + prefix + "*"):
            keys = list(client.scan_iter(match=pattern, count=500))
            if keys:
                client.delete(*keys)
    finally:
        client.close()
