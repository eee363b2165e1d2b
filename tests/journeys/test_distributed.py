"""`cerebrum up --distributed`: every service its own process on the real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from cerebrum.registry import SERVICES
from tests.conftest import PG_URL, REDIS_URL, free_port, require_server

pytestmark = pytest.mark.integration
CEREBRUM = [sys.executable, "-m", "cerebrum.cli"]


def _sql(statement: str) -> None:
    import asyncio

    async def run() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def distributed(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    database, vhost = f"t_{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:10]}"
    _sql(f'CREATE DATABASE "{database}"')
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=PG_URL.rsplit("/", 1)[0] + f"/{database}",
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"test:{uuid.uuid4().hex[:8]}:",
        RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        ENVIRONMENT="test",
        PASSWORD_TIME_COST="1",
        PASSWORD_MEMORY_KIB="1024",
        DATA_DIR=str(tmp_path / "data"),
    )
    port = free_port()
    process = subprocess.Popen(
        [*CEREBRUM, "up", "--distributed", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if (
                    all(
                        httpx.get(f"http://127.0.0.1:{s.port}/ready", timeout=2).status_code == 200
                        for s in SERVICES.values()
                    )
                    and httpx.get(url + "/ready", timeout=2).status_code == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("the distributed platform did not become ready in 90 s")
        yield url, env, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def test_a_student_journey_through_the_gateway_of_separate_processes(
    distributed: tuple[str, dict[str, str], subprocess.Popen[bytes]],
) -> None:
    url, env, process = distributed
    subprocess.run([*CEREBRUM, "seed", "catalogue"], env=env, check=True, capture_output=True)
    subprocess.run([*CEREBRUM, "seed", "questions", "--count", "500"], env=env, check=True, capture_output=True)
    with httpx.Client(base_url=url, timeout=10) as api:
        body = {"email": "split@example.com", "password": "Ribosome-Factory-8", "full_name": "Split Student"}
        assert api.post("/api/auth/register", json=body).status_code == 201
        login = api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert api.get("/api/users/profile", headers=bearer).json()["email"] == body["email"]
        courses = api.get("/api/courses").json()
        assert courses["total"] >= 8
        assert api.get("/api/courses/search", params={"q": "photosynthesis"}).json()["items"]
        questions = api.get(
            "/api/questions/random",
            headers=bearer,
            params={"topic": "genetics", "count": 4, "attempt_id": str(uuid.uuid4())},
        )
        assert questions.status_code == 200 and len(questions.json()["questions"]) == 4
        metrics = httpx.get(f"http://127.0.0.1:{SERVICES['users'].port}/metrics").text
        assert 'route="/auth/login"' in metrics and 'service="users"' in metrics
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=40)
    assert b"every process stopped" in output
    for spec in SERVICES.values():
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{spec.port}/health", timeout=1)
