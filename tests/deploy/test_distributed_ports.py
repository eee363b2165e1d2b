"""`cerebrum up --distributed --base-port N`: every port of a run derives from its base, so runs can share a machine."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from cerebrum.exporters import postgres_data_source
from cerebrum.ports import SPAN, Ports, free_base_port
from tests.deploy.distributed import CEREBRUM, distributed, wait_ready


def test_without_a_base_port_the_documented_addresses_stay() -> None:
    ports = Ports.layout()
    assert ports.gateway == 8000
    assert ports.services == {
        "users": 8101,
        "courses": 8102,
        "enrollments": 8103,
        "payments": 8104,
        "analytics": 8105,
        "communication": 8106,
        "assessments": 8107,
    }
    assert (ports.monolith, ports.postgres_exporter) == (8108, 8109)


def test_every_port_derives_from_the_base_port() -> None:
    ports = Ports.layout(20000)
    taken = [ports.gateway, *ports.services.values(), ports.monolith, ports.postgres_exporter]
    assert sorted(taken) == list(range(20000, 20000 + SPAN))
    assert Ports.layout(20000, gateway=9999).gateway == 9999
    with pytest.raises(ValueError, match="base port"):
        Ports.layout(65530)


def test_a_run_refuses_a_base_port_another_run_holds(tmp_path: Path) -> None:
    base = free_base_port()
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "RABBITMQ_URL": "amqp://nobody@127.0.0.1:1/",
    }
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 3))
        holder.listen()
        done = subprocess.run(
            [*CEREBRUM, "up", "--distributed", "--base-port", str(base), "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert f"ports {base + 3} are in use" in said and "--base-port" in said


def test_the_exporter_reads_the_database_of_the_run_without_a_driver_name() -> None:
    local = postgres_data_source("postgresql+asyncpg://cerebrum:s3cret@127.0.0.1:5432/academy")
    assert local == "postgresql://cerebrum:s3cret@127.0.0.1:5432/academy?sslmode=disable"
    remote = postgres_data_source("postgresql://cerebrum:s3cret@db.internal:5432/academy")
    assert remote.endswith("?sslmode=require")
    assert postgres_data_source("postgresql://u@db.internal/a?sslmode=verify-full").endswith("sslmode=verify-full")


@pytest.mark.integration
def test_two_runs_on_different_base_ports_serve_at_the_same_time(tmp_path: Path) -> None:
    first_base = free_base_port()
    second_base = next(base for base in iter(free_base_port, None) if abs(base - first_base) >= SPAN)
    # Started together, ready together: each run's ports are its own from the first moment.
    with distributed(tmp_path / "first", first_base, wait=False) as first:
        with distributed(tmp_path / "second", second_base, wait=False) as second:
            wait_ready(first)
            wait_ready(second)
            account = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "Golgi-Body-2026", "full_name": "A"}
            login = {"email": account["email"], "password": account["password"]}
            with (
                httpx.Client(base_url=first.gateway, timeout=15) as one,
                httpx.Client(base_url=second.gateway, timeout=15) as two,
            ):
                assert one.post("/api/auth/register", json=account).status_code == 201
                # Each gateway reaches its own run's services: the account exists behind the first only.
                assert one.post("/api/auth/login", json=login).status_code == 200
                assert two.post("/api/auth/login", json=login).status_code == 401
                assert two.post("/api/auth/register", json=account).status_code == 201
            for run in (first, second):
                for name, port in run.ports.services.items():
                    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                    assert f'service="{name}"' in metrics, (name, port)
