"""``cerebrum data``: move the monolith's data to the services' databases, and prove nothing was lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from datamigration.endpoints import Endpoint, TargetLayout
from datamigration.migrate import MigrateOptions, migrate
from datamigration.plan import PlanError, service_schemas
from datamigration.progress import QuietReporter, Reporter, RichReporter
from datamigration.report import migration_table, phase3_gate, read_report, verification_table, write_report
from datamigration.verify import MAX_KEYS, verify

data_app = typer.Typer(help="Phase 3: move the monolith's data to each service's database.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

SourceOpt = Annotated[
    str, typer.Option("--source", envvar="MONOLITH_DATABASE_URL", help="The monolith's PostgreSQL database.")
]
SourceSchemaOpt = Annotated[str, typer.Option(help="The monolith's schema, holding every service's tables.")]
TargetOpt = Annotated[
    str,
    typer.Option(
        "--target", envvar="DATABASE_URL", help="The services' database; {service} in it means one database each."
    ),
]
TargetSchemaOpt = Annotated[str, typer.Option(help="Each service's schema in the target ({service}: its name).")]
ServicesOpt = Annotated[
    list[str] | None, typer.Option("--services", help="Services to move (repeat, or comma-separated); all if omitted.")
]


def _services(values: list[str] | None) -> list[str] | None:
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or None


def _run(main: Coroutine[Any, Any, T], stop: asyncio.Event | None = None) -> T:
    """Runs a coroutine; the first Ctrl-C (or SIGTERM) sets ``stop``, the second interrupts."""

    async def wrapper() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            if stop is not None and not stop.is_set():
                console.print("[yellow]stopping after the current batch or round (Ctrl-C again to abort)[/]")
                stop.set()
            elif task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        return await main

    try:
        return asyncio.run(wrapper())
    except PlanError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except asyncio.CancelledError:
        console.print("[red]aborted; run again to resume from the checkpoint[/]")
        raise typer.Exit(130) from None


@data_app.command("migrate")
def migrate_command(
    source: SourceOpt,
    target: TargetOpt,
    source_schema: SourceSchemaOpt = "monolith",
    target_schema: TargetSchemaOpt = "{service}",
    services: ServicesOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per copy batch (and per catch-up chunk).")] = 20_000,
    follow: Annotated[bool, typer.Option(help="Keep replaying the monolith's changes until Ctrl-C.")] = False,
    cutover: Annotated[
        bool, typer.Option(help="Then stop the monolith's writes to these tables, replay the rest, fence them.")
    ] = False,
    checkpoint_reset: Annotated[bool, typer.Option(help="Empty the target tables and start over.")] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Services moved at once.")] = 2,
    max_lag: Annotated[int, typer.Option(help="Without --follow, cut over once this few changes remain.")] = 1_000,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Copies each service's tables, catches up with the monolith's writes, and (--cutover) cuts over."""
    options = MigrateOptions(
        batch_size=batch_size,
        follow=follow,
        cutover=cutover,
        checkpoint_reset=checkpoint_reset,
        jobs=jobs,
        max_lag=max_lag,
    )
    stop = asyncio.Event()

    async def main() -> None:
        schemas = service_schemas(_services(services))
        reporter: Reporter = QuietReporter() if quiet else RichReporter(console)
        if isinstance(reporter, RichReporter):
            with reporter:
                results = await migrate(
                    Endpoint(source, source_schema),
                    TargetLayout(target, target_schema),
                    schemas,
                    options,
                    reporter=reporter,
                    stop=stop,
                )
        else:
            results = await migrate(
                Endpoint(source, source_schema),
                TargetLayout(target, target_schema),
                schemas,
                options,
                reporter=reporter,
                stop=stop,
            )
        console.print(migration_table(results))
        if any(r.status == "interrupted" for r in results):
            raise typer.Exit(3)

    _run(main(), stop)


@data_app.command("verify")
def verify_command(
    source: SourceOpt,
    target: TargetOpt,
    source_schema: SourceSchemaOpt = "monolith",
    target_schema: TargetSchemaOpt = "{service}",
    services: ServicesOpt = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report (the phase-3 gate's input) here.")] = None,
    max_keys: Annotated[int, typer.Option(help="Differing keys listed per table.")] = MAX_KEYS,
) -> None:
    """Reconciles source and target per table: counts, checksums, and the keys that differ. Exit 1 on any."""
    result = _run(
        verify(
            Endpoint(source, source_schema),
            TargetLayout(target, target_schema),
            service_schemas(_services(services)),
            max_keys=max_keys,
        )
    )
    console.print(verification_table(result))
    if report is not None:
        write_report(result, report)
        console.print(f"report written to {report}")
    if result["total_differences"]:
        raise typer.Exit(1)


@data_app.command("gate")
def gate_command(report: Annotated[Path, typer.Argument(help="A report written by `verify --report`.")]) -> None:
    """The phase-3 gate on a verification report: exit 0 when it passes."""
    verdict = phase3_gate(read_report(report))
    for reason in verdict.reasons:
        console.print(f"[red]✗ {reason}[/]")
    console.print("[green]phase 3 gate: pass[/]" if verdict.passed else "[red]phase 3 gate: fail[/]")
    raise typer.Exit(0 if verdict.passed else 1)


@data_app.command("sample")
def sample_command(
    database: Annotated[
        str, typer.Option("--database", envvar="MONOLITH_DATABASE_URL", help="An empty PostgreSQL database.")
    ],
    users: Annotated[int, typer.Option(min=1, help="Students (with profiles, sessions, logins, enrolments).")] = 10_000,
    events: Annotated[int, typer.Option(min=1, help="Analytics events, spread over a year.")] = 50_000,
) -> None:
    """Fills an empty database with a sample monolith (schema ``monolith``) to try the migration on."""
    from datamigration.sample import SCHEMA, build_monolith

    _run(build_monolith(database, users=users, events=events))
    console.print(f"sample monolith in schema {SCHEMA!r}: {users:,} students, {events:,} analytics events")
