"""``cerebrum load run``: the academy's load scenarios, headless, with a report in one folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from slo.durations import parse_duration
from slo.load.runner import LoadPlan, run
from slo.load.shapes import SHAPES

load_app = typer.Typer(
    help="Load scenarios (Locust): students and admins on the academy's journeys.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)


@load_app.callback()
def load() -> None:
    """Load scenarios (Locust): students and admins on the academy's journeys."""


def _think(value: str) -> tuple[float, float]:
    low, _, high = value.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise typer.BadParameter("write think time as MIN-MAX seconds, e.g. 1-5") from None
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise typer.BadParameter("think time needs 0 <= MIN <= MAX")
    return bounds


@load_app.command("run")
def run_command(
    users: Annotated[int, typer.Option(min=1, help="Peak concurrent users.")] = 10,
    duration: Annotated[str, typer.Option(help="How long: 30s, 5m, 2h.")] = "1m",
    shape: Annotated[str, typer.Option(help=f"Load shape: {', '.join(SHAPES)}.")] = "steady",
    url: Annotated[
        str | None, typer.Option(help="The platform or gateway to load (default: start the embedded platform).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for stats and reports (default slo/out/<time>).")] = None,
    think_time: Annotated[
        str, typer.Option(help="Seconds a user thinks between steps, MIN-MAX: 10-30 (a student reading), 5-15, 1-5.")
    ] = "10-30",
    strict: Annotated[
        bool, typer.Option(help="A step on a prefix the platform does not serve yet fails instead of being skipped.")
    ] = False,
    accounts: Annotated[
        Path | None, typer.Option(help="demo-accounts.json with the admin to log in as (with --url).")
    ] = None,
    pool: Annotated[
        Path | None,
        typer.Option(help="Students made by `cerebrum seed students` (with --url): they do not register."),
    ] = None,
    pool_size: Annotated[
        int,
        typer.Option(min=0, help="Without --url: make this many students before the run (0: each registers)."),
    ] = 0,
) -> None:
    """Runs Locust headless against the platform and writes CSV/JSON stats and Locust's HTML report."""
    if shape not in SHAPES:
        raise typer.BadParameter(f"no shape {shape!r}; known: {', '.join(SHAPES)}", param_hint="--shape")
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from None
    folder = out or Path("slo/out") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    plan = LoadPlan(
        users=users,
        duration=seconds,
        shape=shape,
        out=folder.resolve(),
        url=url,
        think=_think(think_time),
        strict=strict,
        accounts=accounts,
        pool=pool.resolve() if pool else None,
        pool_size=pool_size,
    )
    try:
        summary = run(plan, console)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    skipped = sum(summary.skipped.values())
    console.print(
        f"[bold]{summary.requests}[/] requests, [bold]{summary.failures}[/] failures, "
        f"{skipped} steps skipped (prefixes not served yet), peak {summary.peak_users} users, "
        f"run {summary.run_id}"
    )
    console.print(f"stats and report in {plan.out} (report.html, stats.json, stats_stats.csv, run.json)")
    console.print(f"evaluate with: cerebrum slo evaluate --stats {plan.out}")
    if summary.locust_exit_code != 0 or "stats.json" not in summary.files:
        console.print(f"[red]Locust exited with {summary.locust_exit_code}[/]; see {plan.out / 'locust.log'}")
        raise typer.Exit(1)


if __name__ == "__main__":
    load_app()
