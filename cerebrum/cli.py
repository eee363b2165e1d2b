"""The ``cerebrum`` command: run the platform, migrate its databases, manage accounts."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cerebrum import runner
from cerebrum.journey_cli import demo_app
from cerebrum.shadow_cli import shadow_app
from chaos.cli import chaos_app
from datamigration.cli import data_app
from slo.cli import slo_app
from slo.load.cli import load_app

app = typer.Typer(help="Cerebrum Biology Academy platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
seed_app = typer.Typer(help="Demo and load-test data.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
app.add_typer(slo_app, name="slo", help="SLO specs, burn-rate rules, evaluation and migration-phase gates.")
app.add_typer(load_app, name="load", help="Locust load scenarios against the platform.")
app.add_typer(chaos_app, name="chaos", help="Chaos Toolkit experiments against the platform on the real servers.")
app.add_typer(data_app, name="data", help="Phase 3: move the monolith's data to per-service databases, verify it.")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo", help="See the platform work: a student's journey, step by step.")
app.add_typer(shadow_app, name="shadow", help="Shadow traffic: mirror requests to the other side, diff the answers.")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True, soft_wrap=True)

HostOpt = Annotated[str, typer.Option(help="Address to listen on.", envvar="HOST")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
DataOpt = Annotated[Path, typer.Option(help="Folder for SQLite files, keys and demo accounts.", envvar="DATA_DIR")]


@app.command()
def up(
    host: HostOpt = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default 8000; with --base-port, the base port).")
    ] = None,
    data_dir: DataOpt = Path("data"),
    demo: Annotated[bool, typer.Option(help="Create the demo admin and student accounts.")] = True,
    distributed: Annotated[
        bool, typer.Option(help="Each service in its own process on DATABASE_URL, REDIS_URL and RABBITMQ_URL.")
    ] = False,
    base_port: Annotated[
        int | None,
        typer.Option(
            help="With --distributed: the gateway here, the services on the next seven ports, the monolith "
            "on +8, postgres_exporter on +9, so runs on other base ports never clash (default: 8000, 8101-8109)."
        ),
    ] = None,
    monolith: Annotated[
        bool, typer.Option(help="With --distributed: also run the monolith (base port +8), for the gateway's split.")
    ] = False,
    monolith_port: Annotated[
        int | None, typer.Option(help="With --distributed: run the monolith on this port instead.")
    ] = None,
    exporters: Annotated[
        bool,
        typer.Option(
            help="With --distributed: run postgres_exporter and serve RabbitMQ's per-queue metrics, which "
            "DatabaseConnectionsHigh and ConsumerLag read."
        ),
    ] = False,
) -> None:
    """Runs the whole academy in one process (SQLite and an in-process Redis unless URLs are set)."""
    os.environ.setdefault("DATA_DIR", str(data_dir))
    if distributed:
        from cerebrum import distributed as mode
        from cerebrum.ports import Ports

        try:
            ports = Ports.layout(base_port, gateway=port)
        except ValueError as wrong:
            raise typer.BadParameter(str(wrong), param_hint="--base-port") from None
        if monolith_port is not None:
            ports = replace(ports, monolith_port=monolith_port)
        code = mode.run(
            ports=ports,
            log_dir=data_dir / "logs",
            monolith=monolith or monolith_port is not None,
            exporters=exporters,
            console=console,
            prometheus_file=data_dir / "prometheus.yml",
        )
        raise typer.Exit(code)
    runner.run_embedded(host=host, port=port or 8000, data_dir=data_dir, demo=demo, console=console)


@app.command()
def serve(
    service: Annotated[
        str,
        typer.Argument(help="users, courses, enrollments, payments, analytics, communication, assessments or gateway"),
    ],
    host: HostOpt = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the service's own).")] = None,
    migrate: Annotated[bool, typer.Option(help="Run the service's migrations at start.")] = True,
) -> None:
    """Runs one service in this process (distributed mode), configured by the environment."""
    runner.serve_one(service, host=host, port=port, migrate=migrate, console=console)


@db_app.command("upgrade")
def db_upgrade(services: Annotated[list[str] | None, typer.Argument(help="Services (default: all).")] = None) -> None:
    """Brings each schema to the latest migration; with RABBITMQ_URL, declares every consumer's queues too."""
    asyncio.run(runner.migrate(services or None, console=console))
    if os.environ.get("RABBITMQ_URL") and not services:
        from cerebrum.distributed import declare_queues

        declare_queues()
        console.print("[green]declared[/] every consumer's queues on the broker")


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Argument(help="The service whose models changed.")],
    message: Annotated[str, typer.Option("-m", "--message", help="What the migration does.")],
) -> None:
    """Writes a new migration for a service by comparing its models with its latest migration."""
    asyncio.run(runner.new_revision(service, message, console=console))


@db_app.command("backfill-enrolments")
def db_backfill_enrolments() -> None:
    """Gives courses the enrolments confirmed before it consumed enrolment events (after `db upgrade`; repeatable)."""
    from cerebrum.backfill import backfill_course_enrolments

    asyncio.run(backfill_course_enrolments(console=console))


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    full_name: Annotated[str, typer.Option(help="The admin's name.")] = "Academy admin",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Creates an admin account (or makes an existing account admin with the new password)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            console.print("[red]The passwords differ.[/red]")
            raise typer.Exit(2)
    code = asyncio.run(runner.create_admin(email=email, password=password, full_name=full_name, console=console))
    raise typer.Exit(code)


@seed_app.command("catalogue")
def seed_catalogue() -> None:
    """Loads the demo NEET/CBSE biology catalogue (courses, lessons, curriculum) if it is not there."""
    asyncio.run(runner.load_catalogue(console=console))


@seed_app.command("questions")
def seed_questions(
    count: Annotated[int, typer.Option(help="How many questions to generate.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same bank).")] = 7,
) -> None:
    """Generates a question bank for load tests (50,000 by default)."""
    asyncio.run(runner.load_question_bank(count=count, seed=seed, console=console))


@seed_app.command("students")
def seed_students(
    count: Annotated[int, typer.Option(min=1, help="How many student accounts.")] = 10_000,
    out: Annotated[Path, typer.Option(help="Where to write the accounts and tokens (JSON, mode 600).")] = Path(
        "data/student-pool.json"
    ),
    ttl: Annotated[int, typer.Option(min=60, help="Seconds the access tokens stay valid.")] = 4 * 3600,
) -> None:
    """Creates a pool of student accounts for a load (one shared password, hashed once) and their tokens."""
    from cerebrum.pool import make_pool
    from cerebrum.runner import migrate

    password = f"Mitochondria-{os.urandom(9).hex()}-7"
    asyncio.run(migrate(["users"], console=console))
    pool = asyncio.run(make_pool(count, password=password, ttl_seconds=ttl))
    pool.write(out)
    console.print(f"[green]{count:,} students[/] in {pool.seconds:.1f}s; accounts and tokens in {out} (mode 600)")


@keys_app.command("generate")
def keys_generate() -> None:
    """Prints a new Ed25519 key pair as JWT_PRIVATE_KEY / JWT_PUBLIC_KEY lines for an env file."""
    from services.kit.auth import generate_key_pair

    private, public = generate_key_pair()
    typer.echo("# JWT_PRIVATE_KEY: for the users service only (it signs access tokens)")
    typer.echo(private)
    typer.echo("# JWT_PUBLIC_KEY: for every service (they verify access tokens)")
    typer.echo(public)


if __name__ == "__main__":
    app()
