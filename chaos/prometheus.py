"""A Prometheus of the chaos run's own, loading the repository's rule files, and a watcher of its alerts.

Started and stopped by the run like its RabbitMQ node (``chaos.broker``): Debian's
``/usr/bin/prometheus`` on a free loopback port, with a throwaway data folder, scraping every process
of the platform under test (one job per process, named after it, as compose/prometheus.yml does) and
evaluating the rule files as deployed (``alerts/cerebrum_rules.yml``, ``alerts/slo/slo_rules.yml``),
read from the checkout when the run starts, ``for:`` untouched. Only the intervals are short (1 s),
so that an alert fires as soon as its rule allows. When the binary is missing the Makefile's
``tools`` target installs it.

The watcher polls ``/api/v1/alerts`` and writes every alert's state, with Prometheus's ``activeAt``,
to ``alerts.jsonl`` in the run's folder: the journal's pending and firing times come from there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from chaos.alerts import EVALUATION_INTERVAL_SECONDS, SCRAPE_INTERVAL_SECONDS
from chaos.processes import alive, free_port, reachable, spawn, terminate
from chaos.state import ProcessInfo, append, records

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = (ROOT / "alerts" / "cerebrum_rules.yml", ROOT / "alerts" / "slo" / "slo_rules.yml")
BINARY = "/usr/bin/prometheus"


def binary() -> str:
    """Debian's prometheus, installed with ``make tools`` when it is not there yet."""
    found = shutil.which("prometheus") or (BINARY if Path(BINARY).exists() else None)
    if found is None:
        done = subprocess.run(["make", "-C", str(ROOT), "tools"], capture_output=True, text=True, timeout=600)
        found = shutil.which("prometheus")
        if found is None:
            raise RuntimeError(f"prometheus is missing and `make tools` could not install it: {done.stdout[-500:]}")
    return found


class RunPrometheus:
    """One Prometheus on a free port, its data in a temporary folder, its config and log in ``folder``."""

    def __init__(
        self,
        folder: Path,
        *,
        rule_files: Iterable[Path] = RULE_FILES,
        interval: float = SCRAPE_INTERVAL_SECONDS,
        evaluation: float = EVALUATION_INTERVAL_SECONDS,
    ) -> None:
        self.folder = folder
        self.interval, self.evaluation = interval, evaluation
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.port = 0
        self.pid: int | None = None
        self.data: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, targets: Mapping[str, str]) -> dict[str, Any]:
        interval = f"{self.interval:g}s"
        return {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": f"{self.evaluation:g}s",
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": [urlsplit(url).netloc]}]}
                for name, url in sorted(targets.items())
            ],
        }

    def start(self, targets: Mapping[str, str], *, timeout: float = 60.0) -> None:
        """Starts Prometheus scraping ``targets`` (process name to base URL) and waits until its rules load."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "prometheus.yml").write_text(yaml.safe_dump(self.config(targets), sort_keys=False))
        self.data = Path(tempfile.mkdtemp(prefix="cerebrum-chaos-prometheus-"))
        self.port = free_port()
        argv = [
            binary(),
            f"--config.file={self.folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        info = ProcessInfo(name="prometheus", url=self.url, port=self.port, argv=argv, log=str(self.log_file))
        self.pid = spawn(info, cwd=str(ROOT))
        deadline = time.monotonic() + timeout
        while not self._rules_loaded():
            if not alive(self.pid) or time.monotonic() > deadline:
                said = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
                self.stop()
                raise RuntimeError(f"the run's Prometheus did not start with {self.rule_files}: {said}")
            time.sleep(0.2)

    @property
    def log_file(self) -> Path:
        return self.folder / "prometheus.log"

    def _rules_loaded(self) -> bool:
        try:
            reply = httpx.get(self.url + "/api/v1/rules", timeout=2)
        except httpx.HTTPError:
            return False
        return reply.status_code == 200 and bool(reply.json()["data"]["groups"])

    def stop(self) -> None:
        """Stops the process and removes its data folder; never raises."""
        try:
            terminate(self.pid, grace=10)
        finally:
            if self.data is not None:
                shutil.rmtree(self.data, ignore_errors=True)
                self.data = None

    def stopped(self) -> bool:
        return not alive(self.pid) and not reachable("127.0.0.1", self.port, timeout=0.5)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def alerts_now(url: str) -> list[dict[str, Any]]:
    """Every pending or firing alert: labels, state, and when it became active (epoch seconds)."""
    reply = httpx.get(url.rstrip("/") + "/api/v1/alerts", timeout=5)
    reply.raise_for_status()
    return [
        {"labels": a["labels"], "state": a["state"], "active_at": _epoch(a["activeAt"]), "value": a.get("value")}
        for a in reply.json()["data"]["alerts"]
    ]


class AlertWatcher:
    """Polls the run's Prometheus for alerts and notes each one's state in ``<folder>/alerts.jsonl``."""

    def __init__(self, url: str, folder: Path, *, interval: float = 0.5) -> None:
        self.url, self.folder, self.interval = url, folder, interval
        self._stop = threading.Event()
        self._known: set[tuple[str, str, float]] = set()
        self._thread = threading.Thread(target=self._run, name="chaos-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.poll()  # the last word, after the experiment's end

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            seen = alerts_now(self.url)
        except (httpx.HTTPError, KeyError, ValueError):
            return  # a missed poll only blurs a time by one interval
        at = time.time()
        for alert in seen:
            # Only changes are written: an alert's first poll pending, and its first poll firing.
            key = (json.dumps(alert["labels"], sort_keys=True), alert["state"], alert["active_at"])
            if key not in self._known:
                self._known.add(key)
                append(self.folder, "alerts.jsonl", {"at": at, **alert})

    def observed(self, until: float | None = None) -> list[dict[str, Any]]:
        """What the watcher has written so far (up to ``until``)."""
        return [o for o in records(self.folder, "alerts.jsonl") if until is None or o["at"] <= until]
