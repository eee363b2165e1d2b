"""``cerebrum shadow``: set a prefix's mirrored share at the gateway, and read what the mirrors showed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

shadow_app = typer.Typer(help="Shadow traffic: mirror a share of requests to the other side, diff the answers.")
console = Console(soft_wrap=True)

UrlOpt = Annotated[str, typer.Option(help="The gateway's base URL.", envvar="CEREBRUM_URL")]
TokenOpt = Annotated[str | None, typer.Option(envvar="CEREBRUM_ADMIN_TOKEN", help="Admin token.")]
AccountsOpt = Annotated[Path | None, typer.Option(help="demo-accounts.json: log in as its admin.")]


def _admin(url: str, token: str | None, accounts: Path | None) -> dict[str, str]:
    if token is None and accounts is not None:
        admin = yaml.safe_load(accounts.read_text())["admin"]
        answer = httpx.post(
            f"{url}/api/auth/login", json={"email": admin["email"], "password": admin["password"]}, timeout=30
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
    if token is None:
        raise typer.BadParameter("give --admin-token (or CEREBRUM_ADMIN_TOKEN) or --accounts")
    return {"Authorization": f"Bearer {token}"}


def _call(method: str, url: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    try:
        answer = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=30, **kw)
    except httpx.HTTPError as exc:
        console.print(f"[red]the gateway at {url} did not answer: {exc}[/red]")
        raise typer.Exit(3) from exc
    if answer.status_code >= 400:
        console.print(f"[red]{method} {path}: {answer.status_code} {answer.text}[/red]")
        raise typer.Exit(1)
    return answer.json()


@shadow_app.command("set")
def set_share(
    prefix: Annotated[str, typer.Argument(help="A gateway prefix, e.g. courses.")],
    percent: Annotated[int, typer.Argument(help="Percent of its safe requests mirrored (0 turns it off).")],
    url: UrlOpt = "http://127.0.0.1:8000",
    admin_token: TokenOpt = None,
    accounts: AccountsOpt = None,
) -> None:
    """Sets the share of a prefix's safe requests mirrored to the side that did not serve them."""
    url = url.rstrip("/")
    body = _call("PUT", url, f"/gateway/shadow/{prefix}", _admin(url, admin_token, accounts), json={"percent": percent})
    console.print(f"{body['prefix']}: {body['percent']}% of safe requests mirrored")


def render(report: dict[str, Any]) -> Table:
    """The report as a table: per route, mirrored, diff rate, and the top differing field with its example."""
    table = Table(title="Shadow traffic", show_lines=True)
    for column in ("route", "mirrored", "failed", "diff rate", "top differing fields", "example (served | other)"):
        table.add_column(column)
    for route in report.get("routes", []):
        top = route["top_fields"]
        fields = "\n".join(f"{f['field']} ({f['count']}×)" for f in top) or "-"
        example = json.dumps(top[0]["example"], default=str)[:120] if top else "-"
        table.add_row(
            route["route"],
            str(route["mirrored"]),
            str(route["failed"]),
            f"{route['diff_rate'] * 100:.1f}% of {route['compared']}",
            fields,
            example,
        )
    return table


@shadow_app.command("report")
def report(
    url: UrlOpt = "http://127.0.0.1:8000",
    admin_token: TokenOpt = None,
    accounts: AccountsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per route: requests mirrored, the diff rate after noise, the top differing fields with one example."""
    url = url.rstrip("/")
    body = _call("GET", url, "/gateway/shadow/report", _admin(url, admin_token, accounts))
    if as_json:
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    shares = ", ".join(f"{p} {v}%" for p, v in body.get("shares", {}).items() if v) or "none"
    console.print(f"mirrored shares: {shares}")
    console.print(render(body))
    dropped = sum(body.get("dropped", {}).values())
    if dropped:
        console.print(f"{dropped} mirrors dropped (queue full): {body['dropped']}")
