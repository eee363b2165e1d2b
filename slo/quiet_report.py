"""The verdict of a quiet run: the alerts Prometheus ever held pending or firing, and what it scraped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class AlertSeen:
    alert: str
    labels: dict[str, str]
    state: str
    since: float
    """Prometheus's ``activeAt``: when the rule's expression first held (epoch seconds)."""
    after_seconds: float
    """``since`` counted from the start of the traffic."""


@dataclass(frozen=True)
class Verdict:
    alerts: list[AlertSeen]
    targets: list[dict[str, Any]]
    requests: dict[str, int]
    problems: list[str] = field(default_factory=list)
    """Why the run cannot vouch for silence: a target down or never scraped, no traffic counted."""

    @property
    def quiet(self) -> bool:
        return not self.alerts and not self.problems


def judge(observed: list[dict[str, Any]], scraped: dict[str, Any], *, started: float, locust_exit_code: int) -> Verdict:
    """One row per alert and state (the watcher notes each state once, at its first poll)."""
    rows: dict[tuple[str, str], AlertSeen] = {}
    for seen in observed:
        labels = {k: v for k, v in seen["labels"].items() if k != "alertname"}
        name = seen["labels"].get("alertname", "?")
        key = (name + repr(sorted(labels.items())), seen["state"])
        if key not in rows:
            since = float(seen["active_at"])
            rows[key] = AlertSeen(name, labels, seen["state"], since, round(since - started, 1))
    problems = [
        f"target {t['job']} is {t['health']}" + (f": {t['error']}" if t["error"] else "")
        for t in scraped["targets"]
        if t["health"] != "up" or t["last_scrape"].startswith("0001")
    ]
    if not scraped["targets"]:
        problems.append("Prometheus had no target")
    if not any(scraped["requests"].values()):
        problems.append("Prometheus counted no served request: the rules had nothing to judge")
    if locust_exit_code != 0:
        problems.append(f"Locust exited with {locust_exit_code}")
    alerts = sorted(rows.values(), key=lambda a: (a.since, a.alert, a.state))
    return Verdict(alerts, scraped["targets"], scraped["requests"], problems)


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def print_verdict(verdict: Verdict, console: Console) -> None:
    """The alerts as a table (alert, labels, state, since), then what Prometheus scraped and counted."""
    table = Table(title="Alerts pending or firing during the run", title_justify="left")
    for column in ("alert", "labels", "state", "since (UTC)", "after"):
        table.add_column(column)
    for a in verdict.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        table.add_row(a.alert, labels, a.state, _stamp(a.since), f"{a.after_seconds:+.0f} s")
    if not verdict.alerts:
        table.add_row("(none)", "", "", "", "")
    console.print(table)
    up = sum(t["health"] == "up" for t in verdict.targets)
    counted = ", ".join(f"{service} {n}" for service, n in sorted(verdict.requests.items()))
    console.print(f"targets up: {up}/{len(verdict.targets)}; served requests counted by Prometheus: {counted}")
    for problem in verdict.problems:
        console.print(f"[red]cannot vouch for silence:[/] {problem}")
    if verdict.quiet:
        console.print("[green]QUIET[/]: no alert was pending or firing")
    elif verdict.alerts:
        console.print(f"[red]PAGED[/]: {len(verdict.alerts)} alert state(s) pending or firing")
