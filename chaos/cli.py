"""``cerebrum chaos``: run the chaos experiments (mounted by the ``cerebrum`` command as ``chaos``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from chaos import runner

chaos_app = typer.Typer(help="Chaos experiments against a distributed platform.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@chaos_app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="The experiment (a file name in chaos/experiments).")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="Run every experiment, in order.")] = False,
    url: Annotated[
        str | None, typer.Option(help="A running platform's gateway; by default a private one is started.")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="With --url: its database, for the reconciliation probes.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where journals go.")] = runner.OUT_DIR,
    engine: Annotated[str, typer.Option(help="python (chaoslib's API) or cli (the `chaos run` command).")] = "python",
    shared_rabbitmq: Annotated[
        bool,
        typer.Option(
            "--shared-rabbitmq",
            help="Stop the machine's RabbitMQ (once no other test run is going), not a node of the run's own.",
        ),
    ] = False,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            help="A rule file for the run's Prometheus (repeat for several); by default the repository's "
            "alerts/cerebrum_rules.yml and alerts/slo/slo_rules.yml.",
        ),
    ] = None,
) -> None:
    """Runs one experiment, or all of them, and writes a journal for each to chaos/out/<name>.json."""
    known = runner.discover()
    if run_all:
        names = list(known)
    elif name:
        names = [name]
    else:
        console.print("Name an experiment or pass --all. Known: " + ", ".join(known))
        raise typer.Exit(2)
    if engine not in ("python", "cli"):
        console.print("--engine is python or cli")
        raise typer.Exit(2)
    try:
        outcomes = runner.run(
            names,
            url=url,
            database_url=database_url,
            out_dir=out,
            engine=cast(runner.Engine, engine),
            console=console,
            private_broker=not shared_rabbitmq,
            rule_files=rules or None,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    raise typer.Exit(0 if all(o.passed or o.status == "skipped" for o in outcomes) else 1)


@chaos_app.command("list")
def list_experiments() -> None:
    """Lists the experiments and what each one breaks."""
    import json

    for name, path in runner.discover().items():
        experiment = json.loads(path.read_text())
        console.print(f"[bold]{name}[/]: {experiment.get('title', '')}")


if __name__ == "__main__":
    chaos_app()
