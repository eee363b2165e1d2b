"""How the runner judges an experiment by the run's Prometheus: before its fault, after it, and at the run's end."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from chaos.alerts import Expectations, Rules, judge
from chaos.prometheus import AlertWatcher, alerts_now
from chaos.state import experiment_dir

if TYPE_CHECKING:
    from chaos.runner import Outcome

CLEAR_TIMEOUT_SECONDS = 600.0


@dataclass
class Alerting:
    """The run's Prometheus as the runner judges with it: what it watched, and which experiments wait for alerts."""

    watcher: AlertWatcher
    rules: Rules
    awaited: set[str] | None  # None: every experiment waits for the alerts it names

    def expect(self, name: str, experiment: dict[str, Any], started: float) -> Expectations:
        """Writes what the experiment expects where ``chaos.probes.await_alerts`` reads it."""
        expectations = Expectations.of(experiment)
        plan = {**expectations.as_json(), "started_at": started, "awaited": self.is_awaited(name)}
        (experiment_dir(name=name) / "alerts-expected.json").write_text(json.dumps(plan, indent=2))
        return expectations

    def is_awaited(self, name: str) -> bool:
        return self.awaited is None or name in self.awaited

    def wait_until_clear(self, name: str, expectations: Expectations, console: Console) -> float:
        """Waits until no alert the experiment must fire is active yet; returns the seconds waited.

        An alert an earlier experiment left firing (a 5m error ratio outlives its fault by minutes)
        proves nothing about this fault: the fault starts once Prometheus has let it go.
        """
        started = time.monotonic()
        if not self.is_awaited(name) or not expectations.fire:
            return 0.0
        while time.monotonic() - started < CLEAR_TIMEOUT_SECONDS:
            active = [
                a["labels"]
                for a in alerts_now(self.watcher.url)
                if any(m.matches(a["labels"]) for m in expectations.fire)
            ]
            if not active:
                return round(time.monotonic() - started, 3)
            if time.monotonic() - started < 1:
                console.print(f"[yellow]{name}: waiting until these alerts clear before the fault: {active}[/]")
            time.sleep(2)
        return round(time.monotonic() - started, 3)

    def verdict(self, name: str, expectations: Expectations, **times: Any) -> dict[str, Any]:
        return judge(expectations, self.watcher.observed(), self.rules, awaited=self.is_awaited(name), **times)


def late_pages(outcomes: list[Outcome], alerting: Alerting, known: dict[str, Path]) -> None:
    """Fails an experiment after the fact for an unrelated alert that it set pending and that fired later."""
    for outcome in outcomes:
        c = outcome.cerebrum
        if outcome.journal_path is None or "started_at" not in c:
            continue
        expectations = Expectations.of(json.loads(known[outcome.name].read_text()))
        late = alerting.verdict(
            outcome.name, expectations, started_at=c["started_at"], finished_at=c["finished_at"], fault_at=None
        )
        known_pages = [f"{p['alert']} {p['labels']}" for p in c["alerts"]["unrelated_fired"]]
        new = [f"{p['alert']} {p['labels']}" for p in late["unrelated_fired"]]
        new = [page for page in new if page not in known_pages]
        if not new:
            continue
        c["alerts"]["unrelated_fired_later"] = new
        c["reasons"].append(f"unrelated alert fired after the experiment: {'; '.join(new)}")
        c["verdict"] = "failed"
        journal = json.loads(outcome.journal_path.read_text())
        journal["cerebrum"] = c
        outcome.journal_path.write_text(json.dumps(journal, indent=2, default=str))
