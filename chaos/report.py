"""What a chaos run prints: one line per experiment as it ends, and a table at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from chaos.runner import Outcome


def say_outcome(console: Console, outcome: Outcome) -> None:
    c = outcome.cerebrum
    colour = "green" if outcome.passed else "red"
    console.print(
        f"[{colour}]{c.get('verdict')}[/] {outcome.name}: status {outcome.status}, "
        f"detected in {c.get('time_to_detect_seconds')}s, recovered in {c.get('time_to_recover_seconds')}s"
        + (f" — {'; '.join(c.get('reasons', []))}" if c.get("reasons") else "")
    )


def fired(cerebrum: dict[str, Any]) -> str:
    """``ServiceDown 63.2s/66s`` for each alert the experiment named: fired after, out of its deadline."""
    parts = []
    for alert in (cerebrum.get("alerts") or {}).get("expected", []):
        name = alert["alert"].split("{", 1)[0]
        after = alert["fired_after_seconds"]
        shown = "not awaited" if not alert["awaited"] and after is None else f"{after}s" if after is not None else "no"
        parts.append(f"{name} {shown}/{alert['deadline_seconds']:.0f}s")
    return ", ".join(parts) or "none named"


def table(outcomes: list[Outcome]) -> Table:
    view = Table(title="Chaos experiments (alerts from the run's Prometheus: fired after / deadline; recover < 900s)")
    columns = ("experiment", "verdict", "steady before/after", "alerts fired", "detect (s)", "recover (s)", "journal")
    for column in columns:
        view.add_column(column)
    for o in outcomes:
        c = o.cerebrum
        view.add_row(
            o.name,
            str(c.get("verdict", o.status)),
            f"{c.get('steady_state_before')}/{c.get('steady_state_after')}",
            fired(c),
            str(c.get("time_to_detect_seconds")),
            str(c.get("time_to_recover_seconds")),
            str(o.journal_path or ""),
        )
    return view
