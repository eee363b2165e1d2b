"""`cerebrum up` with no environment: a living academy on one port, as the README promises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CEREBRUM = str(Path(sys.executable).parent / "cerebrum")


@pytest.fixture(scope="module")
def academy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    workdir = tmp_path_factory.mktemp("academy")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "RABBITMQ_", "OTEL_"))}
    process = subprocess.Popen(
        [CEREBRUM, "up", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            pytest.fail(f"cerebrum up exited early:\n{process.stdout.read() if process.stdout else ''}")
    else:
        process.kill()
        pytest.fail("cerebrum up did not answer /health within 60 s")
    yield url, workdir, process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_register_login_profile_on_the_embedded_platform(academy: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, _, _ = academy
    with httpx.Client(base_url=url, timeout=10) as client:
        registered = client.post(
            "/auth/register",
            json={"email": "first@example.com", "password": "Photosynthesis-9", "full_name": "First Student"},
        )
        assert registered.status_code == 201, registered.text
        tokens = client.post("/auth/login", json={"email": "first@example.com", "password": "Photosynthesis-9"})
        assert tokens.status_code == 200
        profile = client.get("/users/profile", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
        assert profile.status_code == 200 and profile.json()["profile"]["full_name"] == "First Student"
        metrics = client.get("/metrics").text
    series = [
        line for line in metrics.splitlines() if line.startswith('http_requests_total{method="GET",route="/users/p')
    ]
    assert series and 'route="/users/profile"' in series[0] and "# {trace_id=" in series[0]


def test_the_demo_student_can_log_in_with_the_file_the_banner_names(
    academy: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, workdir, _ = academy
    login_file = workdir / "data" / "demo-student-login.json"
    assert login_file.stat().st_mode & 0o777 == 0o600
    response = httpx.post(
        f"{url}/auth/login", content=login_file.read_bytes(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    admin = json.loads((workdir / "data" / "demo-accounts.json").read_text())["admin"]
    admin_login = httpx.post(f"{url}/auth/login", json=admin)
    me = httpx.get(f"{url}/users/profile", headers={"Authorization": f"Bearer {admin_login.json()['access_token']}"})
    assert me.json()["role"] == "admin"


def test_the_academy_starts_with_a_catalogue_and_a_question_bank(
    academy: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, workdir, _ = academy
    courses = httpx.get(f"{url}/courses").json()
    assert courses["total"] >= 8
    found = httpx.get(f"{url}/courses/search", params={"q": "genetics"}).json()
    assert found["items"], "the demo catalogue is searchable"
    assert httpx.get(f"{url}/curriculum/11").json()["units"]
    assert httpx.get(f"{url}/docs/users").status_code == 200, "the docs the banner points at exist"
    assert "/auth/login" in httpx.get(f"{url}/openapi/users.json").json()["paths"]
    student = json.loads((workdir / "data" / "demo-accounts.json").read_text())["student"]
    token = httpx.post(f"{url}/auth/login", json=student).json()["access_token"]
    questions = httpx.get(
        f"{url}/questions/random",
        params={"topic": "genetics", "count": 5, "attempt_id": "6f1c1f9e-0000-4000-8000-000000000001"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert questions.status_code == 200, questions.text
    assert len(questions.json()["questions"]) == 5


def test_the_banner_says_where_to_send_the_first_request(academy: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, workdir, process = academy
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    assert f"running at {url}" in output
    assert f"curl -s {url}/api/auth/login" in output and "demo-student-login.json" in output
    assert f"{url}/metrics" in output and "Traces" in output
    credentials = json.loads((workdir / "data" / "demo-accounts.json").read_text())
    assert credentials["student"]["password"] not in output, "passwords stay in the private file"
    assert "Application shutdown complete" in output, "Ctrl-C stops every service cleanly"
