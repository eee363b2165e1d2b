"""The framework ceiling: a bare FastAPI route against each service's hottest read, on the same server.

The bare route (``fastapi.FastAPI()`` with one route and nothing else) runs under the same uvicorn
settings, pinned to the same core, while the distributed platform is up beside it, so that both
share the same neighbours; each service's read goes straight to the service (no gateway), with
its full instrumentation (traces sampled at 10%).
"""

from __future__ import annotations

import os
from typing import Any

from bench.harness import WrkResult, server, wrk
from bench.platforms import Distributed

SECONDS = int(os.environ.get("BENCH_CEILING_SECONDS", "4"))


def _row(name: str, path: str, result: WrkResult, ceiling: float) -> dict[str, Any]:
    return {
        "service": name,
        "read": f"GET {path}",
        "requests_per_s": round(result.requests_per_s, 1),
        "fraction_of_ceiling": round(result.requests_per_s / ceiling, 3),
        "p50_ms": round(result.p50_ms, 3),
        "p95_ms": round(result.p95_ms, 3),
        "p99_ms": round(result.p99_ms, 3),
        "non_2xx": result.non_2xx,
        "command": result.command,
    }


def run(platform: Distributed) -> dict[str, Any]:
    """Closed-loop throughput at 16 connections: the bare route, then each service's hot read."""
    with server("ceiling-bare", {"BENCH_APP": "bare"}, "/ping/1") as bare:
        print("bench: framework ceiling — bare FastAPI route…", flush=True)
        wrk(bare.url + "/ping/1", seconds=1, record=False)
        ceiling = wrk(bare.url + "/ping/1", seconds=SECONDS)
    rows = [{**_row("bare FastAPI", "/ping/1", ceiling, ceiling.requests_per_s), "service": "(ceiling)"}]
    student = platform.student
    for name, path in platform.hot_reads().items():
        shown = path.replace(student.user_id, "{user_id}").replace(student.course_id, "{id}")
        print(f"bench: framework ceiling — {name} GET {shown}…", flush=True)
        url = platform.services[name].url + path
        wrk(url, seconds=1, headers=student.auth, record=False)
        rows.append(_row(name, shown, wrk(url, seconds=SECONDS, headers=student.auth), ceiling.requests_per_s))
    return {"seconds": SECONDS, "connections": 16, "rows": rows}
