"""A real Locust run against a stand-in academy: every request is marked synthetic, and steps on
prefixes the gateway does not serve are skipped and counted instead of failing the run."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from slo.load.runner import LoadPlan, run

SERVED = ["/api/auth/register", "/api/auth/login", "/api/users/profile", "/api/courses", "/api/courses/search"]


def _token() -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "6f1c1f9e-0000-4000-8000-000000000001"}).encode())
    return f"e30.{claims.decode().rstrip('=')}.sig"


class Academy(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if self.path == "/api/openapi.json":
            self._answer(200, {"paths": {path: {} for path in SERVED}})
        elif self.path.startswith("/api/courses"):
            self._answer(200, {"items": [{"id": "c1"}], "id": "c1", "lessons": []})
        else:
            self._answer(200, {})

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/api/auth/register":
            self._answer(201, {})
        else:
            self._answer(200, {"access_token": _token()})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def academy() -> Iterator[str]:
    Academy.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Academy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_requests_are_marked_and_unserved_steps_skipped(academy: str, tmp_path: Path) -> None:
    plan = LoadPlan(users=3, duration=4, shape="steady", out=tmp_path, url=academy, think=(0.01, 0.05))
    summary = run(plan, Console(quiet=True))
    assert summary.locust_exit_code == 0 and summary.requests > 0
    load = [r for r in Academy.seen if r["path"] != "/api/openapi.json"]
    assert load and all(r.get("x-synthetic") == "locust" for r in load)
    assert all(r.get("baggage") == f"synthetic=true,load_test={summary.run_id}" for r in load)
    assert not [r for r in load if r["path"].startswith(("/api/analytics", "/api/enrollments", "/api/questions"))]
    assert summary.skipped, "steps on unserved prefixes are counted"
    assert set(summary.skipped) <= {
        "/api/analytics/dashboard/[id]",
        "/api/enrollments/student/[id]",
        "/api/enrollments",
        "/api/questions/random?topic=[topic]",
        "/api/leaderboard/[topic]",
        "/api/curriculum/[grade]",
    }
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert {e["name"] for e in stats} >= {"[setup] /api/auth/register", "/api/users/profile"}
    assert sum(e["num_failures"] for e in stats) == 0
