"""``cerebrum slo quiet``: exit 0 when no alert was pending or firing, 1 when one was, 3 when unsure."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from slo.quiet import QuietPlan, run
from slo.quiet_report import print_verdict

console = Console(stderr=True, soft_wrap=True)


def quiet(
    minutes: Annotated[float, typer.Option(min=0.5, help="How long the students use the academy.")] = 10,
    students: Annotated[int, typer.Option(min=1, help="Concurrent students.")] = 4,
    think: Annotated[float, typer.Option(min=1, help="Mean seconds a student thinks between steps.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Run folder (default slo/out/quiet-<time>).")] = None,
) -> None:
    """Quiet student traffic (slow argon2 logins included) on the embedded platform; no alert may page.

    A Prometheus of the run's own loads the repository's rule files and scrapes the platform every
    second; every alert that was ever pending or firing is listed (a table on standard error, JSON
    on standard output) and fails the run.
    """
    folder = (out or Path("slo/out") / datetime.now(UTC).strftime("quiet-%Y%m%dT%H%M%SZ")).resolve()
    plan = QuietPlan(minutes=minutes, out=folder, students=students, think=(think / 2, think * 1.5))
    try:
        verdict = run(plan, console)
    except (RuntimeError, OSError) as exc:
        console.print(f"[red]the quiet run could not run:[/] {exc}")
        raise typer.Exit(3) from None
    print_verdict(verdict, console)
    sys.stdout.write(json.dumps({**asdict(verdict), "quiet": verdict.quiet}, indent=2) + "\n")
    console.print(f"run folder: {folder} (quiet.json, alerts.jsonl, prometheus/, load/, platform.log)")
    raise typer.Exit(0 if verdict.quiet else 1 if verdict.alerts else 3)
