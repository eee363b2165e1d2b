"""`cerebrum up --distributed --base-port N`: every port of a run derives from its base, so runs can share a machine.

Two runs serving side by side is tested beside the platform that Prometheus scrapes
(tests/observability_as_code/test_prometheus_distributed.py), which is the first of the two.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from cerebrum.exporters import postgres_data_source
from cerebrum.ports import SPAN, Ports, free_base_port, in_use
from tests.deploy.distributed import CEREBRUM


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
            timeout=240,  # the CLI imports every service first; a busy CI host has taken over a minute
        )
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert f"ports {base + 3} are in use" in said and "--base-port" in said


def test_a_port_the_last_run_closed_connections_on_is_free_again() -> None:
    # The side that closes first keeps its end in TIME_WAIT for a minute. A server listens with
    # SO_REUSEADDR (uvicorn's does), so only a listening socket keeps the next run off the port.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()
            client.recv(1)
        assert in_use([port]) == [port]
    assert "TIME-WAIT" in subprocess.run(["ss", "-tan", f"sport = :{port}"], capture_output=True, text=True).stdout
    assert in_use([port]) == []


def test_the_exporter_reads_the_database_of_the_run_without_a_driver_name() -> None:
    local = postgres_data_source("postgresql+asyncpg://cerebrum:s3cret@127.0.0.1:5432/academy")
    assert local == "postgresql://cerebrum:s3cret@127.0.0.1:5432/academy?sslmode=disable"
    remote = postgres_data_source("postgresql://cerebrum:s3cret@db.internal:5432/academy")
    assert remote.endswith("?sslmode=require")
    assert postgres_data_source("postgresql://u@db.internal/a?sslmode=verify-full").endswith("sslmode=verify-full")
