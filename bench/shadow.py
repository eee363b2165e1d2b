"""Shadow traffic's cost to the user: latency through the gateway, mirrored to a side that hangs, or not.

One embedded gateway (SQLite, the in-process Redis stand-in) in front of an in-process monolith
that answers at once and a service that never answers. Every ``courses`` request is mirrored to
the hanging service (share 100%); ``curriculum`` requests, served by the same two sides, are not.
The two are sent interleaved, one at a time, so both see the same machine. The mirror must add
nothing a user can see: its queue, timeout and breaker take the hang, not the request.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.kit.auth import TokenIssuer
from services.kit.http import AsgiTransport

REQUESTS = 1000
ADDED_P50_MS = 0.5


def _sides() -> tuple[FastAPI, FastAPI]:
    monolith, hanging = FastAPI(), FastAPI()

    @monolith.get("/{path:path}")
    async def answer(path: str) -> dict[str, str]:
        return {"id": path.rsplit("/", 1)[-1], "title": "Cell biology"}

    @hanging.get("/{path:path}")
    async def hang(path: str) -> dict[str, str]:
        await asyncio.sleep(3600)
        return {}

    return monolith, hanging


def _ms(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000, 3)


async def measure(requests: int = REQUESTS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = GatewaySettings(
            environment="test",
            data_dir=Path(data_dir),
            rate_limits="100000000/minute",
            weights_refresh_seconds=0.0,
            shadow_timeout_seconds=0.5,
            observability=False,
        )
        monolith, hanging = _sides()
        app = create_app(
            settings,
            transports={name: AsgiTransport(lambda: hanging) for name in settings.upstreams},
            monolith=AsgiTransport(lambda: monolith),
        )
        issuer = TokenIssuer(settings)
        student = {"Authorization": f"Bearer {issuer.issue(user_id=uuid.uuid4(), role='student', session_id=None)}"}
        admin = {"Authorization": f"Bearer {issuer.issue(user_id=uuid.uuid4(), role='admin', session_id=None)}"}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                assert (await client.put("/gateway/shadow/courses", json={"percent": 100}, headers=admin)).is_success
                seconds: dict[str, list[float]] = {"courses": [], "curriculum": []}
                for number in range(requests + 100):
                    for prefix, times in seconds.items():
                        started = time.perf_counter()
                        answer = await client.get(f"/api/{prefix}/{number}", headers=student)
                        elapsed = time.perf_counter() - started
                        assert answer.status_code == 200, answer.text
                        if number >= 100:  # the first hundred warm the caches
                            times.append(elapsed)
            await app.state.shadow.close()

    def outcome(name: str) -> int:
        value = REGISTRY.get_sample_value("cerebrum_shadow_requests_total", {"route": "courses", "outcome": name})
        return int(value or 0)

    mirrored, plain = seconds["courses"], seconds["curriculum"]
    added = _ms(mirrored, 0.5) - _ms(plain, 0.5)
    return {
        "requests_each": requests,
        "not_mirrored": {"p50_ms": _ms(plain, 0.5), "p95_ms": _ms(plain, 0.95), "p99_ms": _ms(plain, 0.99)},
        "mirrored_to_hanging_side": {
            "p50_ms": _ms(mirrored, 0.5),
            "p95_ms": _ms(mirrored, 0.95),
            "p99_ms": _ms(mirrored, 0.99),
            "max_ms": round(max(mirrored) * 1000, 3),
        },
        "mirror_outcomes": {name: outcome(name) for name in ("failed", "breaker_open", "dropped", "compared")},
        "added_p50_ms": round(added, 3),
        "target_added_p50_ms": ADDED_P50_MS,
        "miss": None if added <= ADDED_P50_MS else f"{added:.3f} ms added at p50",
    }


def run() -> dict[str, Any]:
    print("bench: shadow traffic, user latency with the mirror target hanging…", flush=True)
    return asyncio.run(measure())


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
