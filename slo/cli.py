"""``cerebrum slo``: generate the rules, evaluate SLOs, and run a migration phase's gate.

Exit codes: 0 pass, 1 fail, 2 warn or inconclusive (configurable), 3 the harness could not run
(a bad spec or gate file, a missing input file).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer
import yaml
from rich.console import Console

from slo import report as reports
from slo.durations import parse_duration
from slo.evaluate import evaluate as judge_all
from slo.gate import run_gate, to_report
from slo.gate_model import GateInputs, MissingInput, load_gate
from slo.openslo import to_openslo
from slo.quiet_cli import quiet
from slo.rules import stale, write
from slo.scoring import Thresholds, exit_code
from slo.sli import ServiceSample
from slo.sources import PrometheusClient, read_locust, read_prometheus, read_scrape
from slo.sources.prometheus import PrometheusError
from slo.spec import SPECS_DIR, SpecError, load_specs, prefix_table

slo_app = typer.Typer(help="SLO specs, burn-rate rules, evaluation and migration gates.", no_args_is_help=True)
# Piped into a CI log, the table keeps its width instead of folding to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, soft_wrap=True)


class Source(StrEnum):
    prometheus = "prometheus"
    locust = "locust"
    scrape = "scrape"


class Format(StrEnum):
    table = "table"
    json = "json"
    junit = "junit"
    markdown = "markdown"


SpecsOpt = Annotated[Path, typer.Option(help="Folder of SLO specs (one YAML per service).")]
ServiceOpt = Annotated[list[str] | None, typer.Option("--service", "-s", help="Only these services (repeatable).")]
FormatOpt = Annotated[Format, typer.Option(help="What to print on standard output.")]
OutOpt = Annotated[Path | None, typer.Option(help="Also write JSON, JUnit XML and Markdown reports into this folder.")]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        help="Window to measure: Prometheus (default 1h); a scrape: two scrapes this far apart (default: one)."
    ),
]
UrlOpt = Annotated[str | None, typer.Option(help="Base URL of the platform or gateway (its /metrics for a scrape).")]
PromOpt = Annotated[str | None, typer.Option(help="Prometheus base URL (HTTP API).", envvar="PROMETHEUS_URL")]
StatsOpt = Annotated[Path | None, typer.Option(help="A `cerebrum load run` folder, or Locust's stats JSON or CSV.")]
WarnExit = Annotated[int | None, typer.Option(help="Exit code for WARN (default 2; 0 lets a warning through).")]
InconclusiveExit = Annotated[int | None, typer.Option(help="Exit code for INCONCLUSIVE (default 2).")]


def _emit(report: reports.Report, fmt: Format, out: Path | None, stem: str) -> None:
    if fmt is Format.table:
        reports.print_table(report, console)
    else:
        sys.stdout.write(reports.WRITERS[fmt.value](report))
    if out is not None:
        for path in reports.write_all(report, out, stem):
            errors.print(f"[dim]wrote {path}[/]")


def _fail_to_run(message: str) -> typer.Exit:
    errors.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(3)


@slo_app.command()
def rules(
    specs: SpecsOpt = SPECS_DIR,
    out: Annotated[Path, typer.Option(help="Where the rules and their tests go.")] = Path("alerts/slo"),
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 when the files differ from the specs.")] = False,
) -> None:
    """Generates the recording and burn-rate alert rules, and their promtool tests, from the specs."""
    try:
        loaded = load_specs(specs)
    except SpecError as exc:
        raise _fail_to_run(str(exc)) from None
    if check:
        outdated = stale(loaded, out)
        for path in outdated:
            errors.print(f"[red]out of date:[/] {path} (run `cerebrum slo rules`)")
        raise typer.Exit(1 if outdated else 0)
    changed = write(loaded, out)
    errors.print(f"{len(changed)} file(s) written under {out}" if changed else f"{out} is up to date")


def _samples(
    source: Source,
    *,
    services: list[str],
    stats: Path | None,
    prometheus_url: str | None,
    url: str | None,
    window: str | None,
    table: dict[str, str],
    include_setup: bool = False,
) -> tuple[str, dict[str, ServiceSample]]:
    """Reads the SLIs from the chosen source."""
    if source is Source.locust:
        if stats is None:
            raise SpecError("--source locust needs --stats")
        return f"locust ({stats})", read_locust(stats, table, include_setup=include_setup)
    if source is Source.prometheus:
        if prometheus_url is None:
            raise SpecError("--source prometheus needs --prometheus-url")
        client = PrometheusClient(prometheus_url)
        try:
            return f"prometheus ({prometheus_url})", read_prometheus(client, services, window or "1h")
        finally:
            client.close()
    if url is None:
        raise SpecError("--source scrape needs --url")
    seconds = parse_duration(window) if window else None
    return f"scrape ({url})", read_scrape(url, window_seconds=seconds)


@slo_app.command("evaluate")
def evaluate_command(
    source: Annotated[
        Source | None, typer.Option(help="Where SLIs come from (default: from the options given).")
    ] = None,
    prometheus_url: PromOpt = None,
    window: WindowOpt = None,
    stats: StatsOpt = None,
    url: UrlOpt = None,
    service: ServiceOpt = None,
    capacity: Annotated[bool, typer.Option(help="A capacity run: judge throughput objectives too.")] = False,
    include_setup: Annotated[
        bool, typer.Option(help="Locust: also judge each simulated student's sign-up and first login.")
    ] = False,
    specs: SpecsOpt = SPECS_DIR,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
    pass_at: Annotated[float, typer.Option(help="Total score that passes.")] = 90,
    warn_at: Annotated[float, typer.Option(help="Total score that warns.")] = 75,
    warn_exit: WarnExit = None,
    inconclusive_exit: InconclusiveExit = None,
) -> None:
    """Judges each SLO: target, measured, PASS / WARN / FAIL / INCONCLUSIVE, budget left, burn rate."""
    chosen = source or (
        Source.locust if stats else Source.prometheus if prometheus_url else Source.scrape if url else None
    )
    if chosen is None:
        raise _fail_to_run("give a source: --stats (Locust), --prometheus-url or --url (scrape)")
    try:
        loaded = load_specs(specs, service or None)
        name, samples = _samples(
            chosen,
            services=list(loaded),
            stats=stats,
            prometheus_url=prometheus_url,
            url=url,
            window=window,
            table=prefix_table(load_specs(specs)),
            include_setup=include_setup,
        )
    except SpecError as exc:
        raise _fail_to_run(str(exc)) from None
    except (PrometheusError, httpx.HTTPError) as exc:
        errors.print(f"[magenta]no data:[/] {exc}")
        name, samples = f"{chosen.value} (unreachable)", {}
    labels = {Source.prometheus: window or "1h", Source.locust: "the whole run", Source.scrape: window or "since start"}
    label = labels[chosen]
    result = judge_all(
        loaded, samples, source=name, window=label, capacity=capacity, thresholds=Thresholds(pass_at, warn_at)
    )
    _emit(reports.from_evaluation(result), format, out, "slo-evaluation")
    raise typer.Exit(exit_code(result.verdict, warn=_or(warn_exit, 2), inconclusive=_or(inconclusive_exit, 2)))


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _admin_token(url: str | None, accounts: Path | None) -> str | None:
    if url is None or accounts is None:
        return None
    admin = yaml.safe_load(accounts.read_text())["admin"]
    response = httpx.post(
        url.rstrip("/") + "/api/auth/login", json={"email": admin["email"], "password": admin["password"]}, timeout=30
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@slo_app.command()
def gate(
    phase: Annotated[int, typer.Option(min=1, max=6, help="Migration phase, 1 (extraction) to 6 (production).")],
    gate_file: Annotated[Path | None, typer.Option(help="A gate file instead of slo/gates/phase-N.yaml.")] = None,
    service: ServiceOpt = None,
    stats: StatsOpt = None,
    prometheus_url: PromOpt = None,
    window: WindowOpt = None,
    url: UrlOpt = None,
    reconciliation: Annotated[Path | None, typer.Option(help="Phase 3: the reconciliation report (JSON).")] = None,
    junit: Annotated[list[Path] | None, typer.Option(help="Phase 1/4: JUnit XML of the test run (repeatable).")] = None,
    chaos: Annotated[list[Path] | None, typer.Option(help="Phase 5: a Chaos Toolkit journal (repeatable).")] = None,
    target_users: Annotated[int | None, typer.Option(help="Phase 5: users the load must reach.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Phase 6: the gateway prefix being moved.")] = None,
    path: Annotated[
        str | None, typer.Option(help="Phase 6: the path to request ({user_id}, {uuid} filled in).")
    ] = None,
    requests: Annotated[int, typer.Option(help="Phase 6: canary requests to send, half to each side.")] = 200,
    students: Annotated[int, typer.Option(help="Phase 6: at most this many fresh students.")] = 60,
    promote: Annotated[bool, typer.Option(help="Phase 6: PASS moves the weight up a step, FAIL back.")] = False,
    admin_token: Annotated[str | None, typer.Option(envvar="CEREBRUM_ADMIN_TOKEN", help="Admin token.")] = None,
    accounts: Annotated[Path | None, typer.Option(help="demo-accounts.json: log in as its admin.")] = None,
    repo_root: Annotated[Path, typer.Option(help="Where alerts/ and dashboards/ are.")] = Path("."),
    specs: SpecsOpt = SPECS_DIR,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
    warn_exit: WarnExit = None,
    inconclusive_exit: InconclusiveExit = None,
) -> None:
    """Runs a migration phase's gate: its criteria scored, a verdict, and an exit code for CI."""
    try:
        gate_spec = load_gate(phase, gate_file)
        loaded = load_specs(specs)
        if service:
            load_specs(specs, service)  # names every unknown service
        inputs = GateInputs(
            specs=loaded,
            repo_root=repo_root,
            services=list(service or []),
            stats=stats,
            prometheus_url=prometheus_url,
            window=window or "1h",
            url=url,
            reconciliation=reconciliation,
            junit=list(junit or []),
            chaos=list(chaos or []),
            target_users=target_users,
            prefix=prefix,
            path=path,
            requests=requests,
            students=students,
            admin_token=admin_token or (_admin_token(url, accounts) if promote else None),
            promote=promote and phase == 6,
        )
        result = run_gate(gate_spec, inputs)
    except (SpecError, MissingInput) as exc:
        raise _fail_to_run(str(exc)) from None
    except httpx.HTTPError as exc:
        raise _fail_to_run(f"the gateway refused or did not answer: {exc}") from None
    _emit(to_report(result), format, out, f"slo-gate-phase-{phase}")
    if result.promotion is not None:
        p = result.promotion
        errors.print(f"weight of {p.prefix}: {p.before}% → {p.after}% ({p.action})")
    codes = result.exit_codes
    raise typer.Exit(
        exit_code(
            result.verdict, warn=_or(warn_exit, codes.warn), inconclusive=_or(inconclusive_exit, codes.inconclusive)
        )
    )


@slo_app.command()
def export(
    specs: SpecsOpt = SPECS_DIR,
    service: ServiceOpt = None,
) -> None:
    """Prints the specs as OpenSLO v1 documents (a Service and an SLO per objective)."""
    try:
        loaded = load_specs(specs, service or None)
    except SpecError as exc:
        raise _fail_to_run(str(exc)) from None
    documents = [doc for spec in loaded.values() for doc in to_openslo(spec)]
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, width=1000))


if __name__ == "__main__":
    slo_app()


slo_app.command("quiet")(quiet)
