"""``cerebrum demo journey``: the student's journey against a running platform, as a table."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cerebrum.journey import JourneyResult, Step, run_journey

demo_app = typer.Typer(help="See the platform work, with the calls to copy.", no_args_is_help=True)
# The embedded platform's address when started as the README says (`make up`, `cerebrum up`).
DEFAULT_URL = "http://127.0.0.1:8000"
JAEGER_UI_PORT = 16686
_UUID = re.compile(r"([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def jaeger_ui_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """Where trace ids link to: JAEGER_UI_URL, else Jaeger's UI port on the OTLP endpoint's host."""
    if explicit := environ.get("JAEGER_UI_URL"):
        return explicit.rstrip("/")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or environ.get("OTEL_TRACES_EXPORTER", "otlp") not in ("", "otlp"):
        return None
    host = urlsplit(endpoint).hostname
    return f"http://{host}:{JAEGER_UI_PORT}" if host else None


def journey_table(result: JourneyResult, *, jaeger: str | None) -> Table:
    table = Table(title="A student's journey through the gateway", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("step")
    table.add_column("request", overflow="fold")
    table.add_column("status", justify="right")
    table.add_column("ms", justify="right")
    table.add_column("trace id", no_wrap=True)
    for number, step in enumerate(result.steps, 1):
        table.add_row(
            str(number),
            step.name if not step.note else f"{step.name} [dim]({step.note})[/]",
            f"{step.method} {_short_ids(step.path)}",
            _status(step),
            f"{step.ms:.1f}",
            _trace(step, jaeger),
        )
    return table


def _short_ids(path: str) -> str:
    """Ids cut to their first eight digits, so that a row fits a terminal (the trace has the full path)."""
    return _UUID.sub(r"\1…", path)


def _status(step: Step) -> Text:
    return Text(str(step.status or "-"), style="green" if step.ok else "bold red")


def _trace(step: Step, jaeger: str | None) -> Text:
    if step.trace_id is None:
        return Text("-", style="dim")
    if jaeger is None:
        return Text(step.trace_id)
    # An OSC 8 hyperlink: terminals that know it open the trace on a click, others show the id.
    return Text(step.trace_id, style=f"link {jaeger}/trace/{step.trace_id}")


async def _walk(url: str, timeout: float, console: Console) -> JourneyResult:
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        with console.status(f"walking a new student's journey through {url}/api/ …") as status:
            return await run_journey(client, on_step=lambda step: status.update(f"{step.name} … done"))


@demo_app.command("journey")
def journey(
    url: Annotated[str, typer.Option(help="The platform's (gateway's) address.", envvar="CEREBRUM_URL")] = DEFAULT_URL,
    timeout: Annotated[float, typer.Option(help="Seconds each request may take.")] = 10.0,
) -> None:
    """Walks a new student through the gateway (register → … → notifications) and shows each call.

    Exits non-zero when a step fails. Trace ids link to Jaeger when JAEGER_UI_URL or
    OTEL_EXPORTER_OTLP_ENDPOINT is set.
    """
    console = Console(soft_wrap=False)
    url = url.rstrip("/")
    result = asyncio.run(_walk(url, timeout, console))
    jaeger = jaeger_ui_url()
    console.print(journey_table(result, jaeger=jaeger))
    passed = sum(step.ok for step in result.steps)
    if result.passed:
        console.print(f"[bold green]every step passed[/] ({passed} calls in {result.seconds:.1f} s)")
    else:
        failed = next((s for s in result.steps if not s.ok), None)
        where = f"at '{failed.name}': {failed.note}" if failed else "before the first call"
        console.print(f"[bold red]the journey failed[/] {where} ({passed} calls passed)")
    if jaeger is None:
        console.print("[dim]Set JAEGER_UI_URL (or OTEL_EXPORTER_OTLP_ENDPOINT) to make each trace id a link.[/]")
    else:
        console.print(f"[dim]Trace ids link to {jaeger}/trace/<id>.[/]")
    raise typer.Exit(0 if result.passed else 1)
