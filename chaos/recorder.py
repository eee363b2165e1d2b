"""The SLO evaluator's and gate's verdict on an experiment: its metrics scraped before and after.

Alerts are not judged here: the run's own Prometheus evaluates the repository's rule files
(``chaos.prometheus``, ``chaos.alerts``). What stays is what ``slo/`` needs, which reads a pair of
expositions rather than a time series: each watched service's ``/metrics`` when the recording
starts and when it stops, written beside the experiment for the evaluator and the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.control import scrape


@dataclass
class MetricsRecorder:
    urls: dict[str, str]
    folder: Path
    first: dict[str, str] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.first = self._scrape()

    def stop(self) -> None:
        self.last = self._scrape()
        for service, text in self.first.items():
            (self.folder / f"metrics-first-{service}.txt").write_text(text)
        for service, text in self.last.items():
            (self.folder / f"metrics-last-{service}.txt").write_text(text)

    def _scrape(self) -> dict[str, str]:
        texts = {}
        for service, url in self.urls.items():
            try:
                texts[service] = scrape(url)
            except httpx.HTTPError:
                continue  # a dead process has no metrics: the evaluator says so for lack of a file
        return texts


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
