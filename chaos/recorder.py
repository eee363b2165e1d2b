"""Metrics recorded during an experiment, and the alert and SLO verdicts they lead to.

There is no Prometheus in a chaos run, so the recorder scrapes each watched service's ``/metrics``
every second and keeps the request and 5xx counters (probes left out, as the recording rules do).
From those it evaluates the page-level burn-rate alert of ``alerts/cerebrum_rules.yml``

    error ratio over 1h > 14.4 x budget  and  error ratio over 5m > 14.4 x budget

(budget = 1 - availability target), and it hands the first and last scrapes to the SLO evaluator
and gate in ``slo/`` for their verdict. The alert rule also has ``for: 2m``: the page itself goes
out two minutes after the expression first holds, which the journal says beside the time to detect.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.control import request_counts, scrape
from chaos.state import append, records

PAGE_FACTOR = 14.4
PAGE_WINDOWS = {"5m": 300.0, "1h": 3600.0}
ALERT_FOR_SECONDS = 120.0


@dataclass
class MetricsRecorder:
    urls: dict[str, str]
    folder: Path
    interval: float = 1.0
    first: dict[str, str] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.scrape_once()
        self._thread = threading.Thread(target=self._run, name="chaos-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.scrape_once()
        for service, text in self.first.items():
            (self.folder / f"metrics-first-{service}.txt").write_text(text)
        for service, text in self.last.items():
            (self.folder / f"metrics-last-{service}.txt").write_text(text)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.scrape_once()

    def scrape_once(self) -> None:
        for service, url in self.urls.items():
            try:
                text = scrape(url)
            except httpx.HTTPError:
                continue  # a dead process has no metrics; the gap is what Prometheus would see too
            self.first.setdefault(service, text)
            self.last[service] = text
            append(self.folder, "metrics.jsonl", {"at": time.time(), "service": service, **request_counts(text)})


def _increase(points: list[dict[str, Any]], key: str) -> float:
    """A counter's increase over the points, across restarts (a drop means the process started over)."""
    total = 0.0
    for before, after in zip(points, points[1:], strict=False):
        delta = after[key] - before[key]
        total += delta if delta >= 0 else after[key]
    return total


def error_ratios(folder: Path, service: str, *, now: float | None = None) -> dict[str, float | None]:
    """The 5xx share of requests over each alert window, from what the recorder saw."""
    now = now or time.time()
    points = sorted((p for p in records(folder, "metrics.jsonl") if p["service"] == service), key=lambda p: p["at"])
    ratios: dict[str, float | None] = {}
    for name, seconds in PAGE_WINDOWS.items():
        window = [p for p in points if p["at"] >= now - seconds]
        requests = _increase(window, "requests")
        ratios[name] = _increase(window, "errors") / requests if requests > 0 else None
    return ratios


def availability_target(service: str) -> float:
    """The service's availability target from its SLO spec (0.999 when the spec cannot be read)."""
    try:
        from slo.spec import AvailabilityObjective, load_specs

        spec = load_specs(services=[service])[service]
        for objective in spec.objectives:
            if isinstance(objective, AvailabilityObjective):
                return float(objective.target)
    except Exception:  # the SLO package is another team's, still moving: fall back to the plan's figure
        pass
    return 0.999


def burn_rate_alert(folder: Path, service: str, *, now: float | None = None) -> dict[str, Any]:
    """Evaluates the page-level availability burn-rate alert expression on the recorded metrics."""
    budget = 1 - availability_target(service)
    threshold = PAGE_FACTOR * budget
    ratios = error_ratios(folder, service, now=now)
    fires = all(ratio is not None and ratio > threshold for ratio in ratios.values())
    return {
        "service": service,
        "expression": f"error ratio 1h > {PAGE_FACTOR} x {budget:g} and error ratio 5m > {PAGE_FACTOR} x {budget:g}",
        "threshold": threshold,
        "ratios": ratios,
        "fires": fires,
        "pages_after_for_seconds": ALERT_FOR_SECONDS,
    }


def slo_verdicts(service: str, url: str, folder: Path) -> dict[str, Any]:
    """The SLO evaluator's verdict on the recorded window, and the gate's on the service's metrics."""
    try:
        from slo.evaluate import evaluate
        from slo.gate import run_gate
        from slo.gate_model import Criterion, GateFile, GateInputs
        from slo.sources.scrape import samples_from_metrics
        from slo.spec import load_specs
    except ImportError as exc:
        return {"source": "unavailable", "error": str(exc)}
    first = (folder / f"metrics-first-{service}.txt").read_text()
    last = (folder / f"metrics-last-{service}.txt").read_text()
    specs = load_specs(services=[service])
    samples = samples_from_metrics(last, earlier=first)
    evaluation = evaluate(specs, samples, source="chaos recording", window="experiment")
    gate = GateFile(
        phase=4,
        name="chaos",
        description=f"{service}'s SLOs while a chaos experiment fails its requests",
        criteria=[Criterion(name=f"{service}-slo", check="slo", key=True, weight=1)],
    )
    result = run_gate(gate, GateInputs(specs=specs, services=[service], url=url))
    (objective_verdicts,) = [
        {o.objective: str(o.verdict) for o in s.objectives} for s in evaluation.services if s.service == service
    ]
    return {
        "source": "slo.evaluate + slo.gate",
        "evaluator_verdict": str(evaluation.verdict),
        "objectives": objective_verdicts,
        "requests": samples[service].requests if service in samples else 0,
        "errors": samples[service].errors if service in samples else 0,
        "gate_verdict": str(result.verdict),
        "gate_reason": result.reason,
    }
