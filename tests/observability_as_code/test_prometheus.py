"""A real Prometheus scrapes a real platform process and evaluates our rules over what it scraped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards import metric_names
from dashboards.rules import alerts
from tests.conftest import free_port
from tests.observability_as_code.promql import ALL_RULE_FILES, as_prometheus_sees_it, dashboard_queries

CEREBRUM = Path(sys.executable).parent / "cerebrum"
DEADLINE_SECONDS = 90  # generous: on a loaded 2-core machine the platform alone can take 30 s to start


@contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Runs a process for the block, and always stops it (SIGTERM, then SIGKILL)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def wait_for(what: str, probe: Callable[[], Any], logs: list[Path], until: float) -> Any:
    """Polls until probe returns something truthy; fails with the processes' logs at the deadline."""
    while time.monotonic() < until:
        try:
            found = probe()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=2).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def query_error(prometheus: str, expr: str) -> str | None:
    """What Prometheus says is wrong with a query (parse, types, vector matching), or None."""
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=2).json()
    return None if body["status"] == "success" else f"{body.get('errorType')}: {body.get('error')}"


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed; install it with: apt-get install -y prometheus")
    return binary


def test_prometheus_scrapes_the_platform_and_records_red_per_service(tmp_path: Path) -> None:
    binary = prometheus_binary()
    until = time.monotonic() + DEADLINE_SECONDS
    app_port, prom_port = free_port(), free_port()
    platform, prometheus = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{prom_port}"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        # As compose loads them: ours and the SLO checker's, so that their names cannot collide unseen.
        "rule_files": [str(path) for path in ALL_RULE_FILES],
        "scrape_configs": [{"job_name": "cerebrum", "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")}
    app_log, prom_log = tmp_path / "cerebrum.log", tmp_path / "prometheus.log"
    logs = [app_log, prom_log]

    cerebrum_up = [str(CEREBRUM), "up", "--port", str(app_port), "--data-dir", str(tmp_path / "data"), "--no-demo"]
    prometheus_args = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--enable-feature=exemplar-storage",
    ]
    with process(cerebrum_up, app_log, env), process(prometheus_args, prom_log):
        wait_for("the platform", lambda: httpx.get(f"{platform}/health", timeout=1).status_code == 200, logs, until)
        wait_for("Prometheus", lambda: httpx.get(f"{prometheus}/-/ready", timeout=1).status_code == 200, logs, until)

        def traffic_recorded() -> list[dict[str, Any]]:
            for _ in range(5):
                httpx.get(f"{platform}/api/courses", timeout=2)
            return [
                sample
                for sample in query(prometheus, metric_names.SERVICE_REQUESTS_RATE5M)
                if sample["metric"].get("service") == "courses" and float(sample["value"][1]) > 0
            ]

        (sample,) = wait_for(
            f"{metric_names.SERVICE_REQUESTS_RATE5M}{{service='courses'}}", traffic_recorded, logs, until
        )
        assert sample["metric"] == {"__name__": metric_names.SERVICE_REQUESTS_RATE5M, "service": "courses"}

        up = query(prometheus, 'up{job="cerebrum"}')
        assert [float(s["value"][1]) for s in up] == [1.0]
        ratio = query(prometheus, f'{metric_names.SERVICE_ERROR_RATIO_RATE5M}{{service="courses"}}')
        assert [float(s["value"][1]) for s in ratio] == [0.0]

        # The exemplars Grafana links to Jaeger: stored by Prometheus, each with a trace id.
        now = time.time()
        exemplars = httpx.get(
            f"{prometheus}/api/v1/query_exemplars",
            params={"query": metric_names.HTTP_DURATION_BUCKET, "start": now - 60, "end": now + 1},
            timeout=2,
        ).json()["data"]
        assert any(len(e["labels"].get("trace_id", "")) == 32 for series in exemplars for e in series["exemplars"])

        # Every rule Prometheus has evaluated so far evaluated without an error (vector matching,
        # types) on series a real platform exposes, not only on the hand-made series of the unit tests.
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=2).json()["data"]["groups"]
        assert {g["name"] for g in groups} >= {"cerebrum_red", "cerebrum_alerts"}
        errors = [f"{r['name']}: {r['lastError']}" for g in groups for r in g["rules"] if r.get("health") == "err"]
        assert not errors, errors
        # Every dashboard query, as Grafana sends it for the courses service, runs without an error
        # on these series (the SLO checker's included): many-to-many matches show only on real data.
        picked = {"service": "courses", "prefix": "courses", "slo": "availability", "__rate_interval": "1m"}
        failed = [
            f"{q.where}: {error}"
            for q in dashboard_queries()
            if (error := query_error(prometheus, as_prometheus_sees_it(q.expr, picked)))
        ]
        assert not failed, "\n".join(failed)
        alerting = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
        assert {a.name for a in alerts()} <= alerting
