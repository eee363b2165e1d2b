"""A real Prometheus scrapes `cerebrum up --distributed --exporters` with the configuration the run writes.

Every alert rule and dashboard panel is meant for the distributed platform (compose and Kubernetes
run it too): each metric they read must be in what Prometheus scraped from it after a student's
journey, or be written by a recording rule (whose own inputs are checked the same way).

The same platform is the first of two runs that share the machine (`--base-port`): a second one
starts beside it while it serves, rather than two more platforms being started for that alone.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cerebrum.journey import run_journey
from cerebrum.ports import SPAN, free_base_port
from cerebrum.registry import SERVICES
from tests.conftest import free_port
from tests.deploy.distributed import Running, distributed
from tests.observability_as_code import emitted, promql
from tests.observability_as_code.test_prometheus import process, prometheus_binary, query, wait_for

pytestmark = pytest.mark.integration
SEED = (
    "import asyncio\n"
    "from rich.console import Console\n"
    "from cerebrum import runner\n"
    "console = Console(stderr=True)\n"
    "asyncio.run(runner.load_catalogue(console=console))\n"
    "asyncio.run(runner.load_question_bank(count=300, seed=7, console=console))\n"
)
JOBS = {"gateway", *SERVICES, "postgres", "rabbitmq"}
# Metrics read by a panel but with no series until something rare happens (so the panel shows
# nothing rather than zero until then), each with why; take a name out once the platform emits it.
NOT_YET_AT_ZERO: dict[str, str] = {}


def seed(running: Running) -> None:
    done = subprocess.run([sys.executable, "-c", SEED], env=running.env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def scraped_since(prometheus: str, moment: float) -> bool:
    """Every target has been scraped after ``moment`` (so what happened before it is in Prometheus)."""
    samples = query(prometheus, "timestamp(up)")
    return {s["metric"]["job"] for s in samples if float(s["value"][1]) > moment} >= JOBS


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Running]]:
    """The platform once per module: seeded, scraped every second, after one student's whole journey."""
    binary = prometheus_binary()
    folder = tmp_path_factory.mktemp("distributed-scrape")
    with distributed(folder / "data", free_base_port(), "--exporters") as running:
        config = yaml.safe_load((running.data_dir / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = f"http://127.0.0.1:{port}"
        argv = [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        log = folder / "prometheus.log"
        with process(argv, log):
            until = time.monotonic() + 60
            wait_for(
                "Prometheus", lambda: httpx.get(f"{prometheus}/-/ready", timeout=1).status_code == 200, [log], until
            )
            seed(running)

            async def journey() -> Any:
                async with httpx.AsyncClient(base_url=running.gateway, timeout=30) as client:
                    return await run_journey(client)

            walked = asyncio.run(journey())
            assert walked.passed, [f"{s.name}: {s.status} {s.note}" for s in walked.steps if not s.ok]
            # A provider webhook that is not the provider's: the webhook counter's first series.
            forged = httpx.post(
                f"{running.gateway}/api/payments/webhooks/razorpay",
                content=b'{"event": "x"}',
                headers={"x-razorpay-signature": "0"},
                timeout=10,
            )
            assert forged.status_code == 400, forged.text
            finished = time.time()
            wait_for(
                "a scrape of every target after the journey",
                lambda: scraped_since(prometheus, finished),
                [log],
                time.monotonic() + 30,
            )
            yield prometheus, running


def test_prometheus_scrapes_every_process_and_both_exporters(scraped: tuple[str, Running]) -> None:
    prometheus, running = scraped
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
    assert health == dict.fromkeys(JOBS, ("up", "")), health
    # DatabaseConnectionsHigh's input counts this run's own connections too...
    database = running.env["DATABASE_URL"].rsplit("/", 1)[1]
    connections = query(prometheus, f'sum(pg_stat_activity_count{{datname="{database}"}})')
    assert connections and float(connections[0]["value"][1]) >= len(SERVICES)
    # ...and ConsumerLag's sees each consuming service's queue on this run's vhost, one series each.
    vhost = running.env["RABBITMQ_URL"].rsplit("/", 1)[1]
    queues = {s["metric"]["queue"] for s in query(prometheus, f'rabbitmq_queue_messages_ready{{vhost="{vhost}"}}')}
    # ConsumerLag matches queue=~".+\\.events": each consumer's own queue.
    assert {f"{spec.name}.events" for spec in SERVICES.values() if spec.consumes} <= queues, queues


def test_every_alert_and_panel_reads_a_metric_the_distributed_platform_emits(scraped: tuple[str, Running]) -> None:
    prometheus, _ = scraped
    names = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=5).json()["data"])
    recorded = promql.recorded_names()
    queried = emitted.queried_by(emitted.alert_and_panel_queries())
    assert len(queried) > 20
    missing = {metric: where for metric, where in queried.items() if metric not in names | recorded}
    now_emitted = set(NOT_YET_AT_ZERO) & names
    assert not now_emitted, f"{sorted(now_emitted)} are emitted now: take them out of NOT_YET_AT_ZERO"
    missing = {metric: where for metric, where in missing.items() if metric not in NOT_YET_AT_ZERO}
    assert not missing, "Read by alerts or panels, emitted nowhere on the distributed platform:\n" + "\n".join(
        f"  {metric}\n" + "".join(f"      {w}\n" for w in sorted(set(where))) for metric, where in missing.items()
    )


def test_a_second_run_on_another_base_port_serves_beside_it(scraped: tuple[str, Running], tmp_path: Path) -> None:
    _, first = scraped
    second_base = next(base for base in iter(free_base_port, None) if abs(base - first.ports.base) >= SPAN)
    with distributed(tmp_path / "second", second_base) as second:
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
