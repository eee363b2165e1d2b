"""Phase 6 on a real gateway: canary requests over HTTP, split by the gateway, and the weight moved.

The gateway is the real one (its split, its weights API, its SQLite and Redis stand-in), served by
uvicorn on a free port; behind it a fake service and a fake monolith answer every path, and both
sign students in with real tokens so that the gateway can tell the students apart.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.kit.auth import TokenIssuer
from services.kit.http import AsgiTransport
from slo.cli import slo_app
from tests.conftest import free_port


@dataclass
class Side:
    name: str
    issuer: TokenIssuer
    delay: float = 0.0
    marks: set[str] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/auth/register", status_code=201)
        async def register() -> dict[str, str]:
            return {"status": "registered"}

        @app.post("/auth/login")
        async def login() -> dict[str, Any]:
            token = self.issuer.issue(user_id=uuid.uuid4(), role="student", session_id=None)
            return {"access_token": token, "token_type": "bearer", "expires_in": 900}

        @app.get("/{path:path}")
        async def answer(path: str, request: Request) -> dict[str, str]:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.marks.add(
                f"{request.headers.get('x-synthetic')}; {request.headers.get('baggage', '').rsplit('-', 1)[0]}"
            )
            return {"side": self.name, "path": path}

        return app


@dataclass
class Canary:
    url: str
    admin: str
    service: Side

    def weight(self) -> int:
        answer = httpx.get(f"{self.url}/gateway/weights", headers={"Authorization": f"Bearer {self.admin}"})
        return int(answer.json()["weights"]["courses"])


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings(
        environment="test", data_dir=tmp_path, rate_limits="1000000/minute", weights_refresh_seconds=0.0
    )
    issuer = TokenIssuer(settings)  # makes the development signing key under tmp_path, as the gateway reads it
    service, monolith = Side("service", issuer), Side("monolith", issuer)
    service_app, monolith_app = service.app(), monolith.app()
    gateway = create_app(
        settings,
        transports={name: AsgiTransport(lambda: service_app) for name in settings.upstreams},
        monolith=AsgiTransport(lambda: monolith_app),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(gateway, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.05)
    admin = issuer.issue(user_id=uuid.uuid4(), role="admin", session_id=None)
    try:
        yield Canary(f"http://127.0.0.1:{port}", admin, service)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _gate(canary: Canary, tmp_path: Path) -> Any:
    args = [
        "gate", "--phase", "6", "--url", canary.url, "--prefix", "courses", "--requests", "120",
        "--students", "150", "--promote", "--admin-token", canary.admin, "--out", str(tmp_path),
    ]  # fmt: skip
    return CliRunner().invoke(slo_app, args)


def _said(result: Any, out: Path) -> str:
    """What the gate printed, its report and any exception: enough to tell a noisy run from a broken gate."""
    report = out / "slo-gate-phase-6.md"
    return "\n".join(
        [
            result.output,
            report.read_text() if report.exists() else "(no report written)",
            repr(result.exception) if result.exception else "",
        ]
    )


def test_a_passing_canary_is_promoted_and_a_slower_one_rolled_back(canary: Canary, tmp_path: Path) -> None:
    set_ten = httpx.put(
        f"{canary.url}/gateway/weights/courses",
        json={"weight": 10},
        headers={"Authorization": f"Bearer {canary.admin}"},
    )
    assert set_ten.status_code == 200 and canary.weight() == 10

    passed = _gate(canary, tmp_path / "pass")
    assert passed.exit_code == 0, _said(passed, tmp_path / "pass")
    assert canary.weight() == 25
    assert "courses 10% → 25% (promoted)" in (tmp_path / "pass" / "slo-gate-phase-6.md").read_text()
    assert canary.service.marks == {"canary; synthetic=true,load_test=canary"}, "canary traffic is marked synthetic"

    canary.service.delay = 0.06  # the extracted service got slower
    failed = _gate(canary, tmp_path / "fail")
    assert failed.exit_code == 1, _said(failed, tmp_path / "fail")
    assert canary.weight() == 10, "rolled back to the previous step"
    report = (tmp_path / "fail" / "slo-gate-phase-6.json").read_text()
    assert '"canary-latency"' in report and "Mann-Whitney" in report and "rolled back" in report
