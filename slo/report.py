"""Writes evaluations and gate results: a terminal table, JSON, JUnit XML (CI) and Markdown (a PR comment)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from slo.evaluate import Evaluation, ObjectiveResult
from slo.scoring import Verdict

STYLE = {
    Verdict.PASS: "green",
    Verdict.WARN: "yellow",
    Verdict.FAIL: "bold red",
    Verdict.INCONCLUSIVE: "magenta",
    Verdict.SKIPPED: "dim",
}
EMOJI = {
    Verdict.PASS: "✅",
    Verdict.WARN: "⚠️",
    Verdict.FAIL: "❌",
    Verdict.INCONCLUSIVE: "❔",
    Verdict.SKIPPED: "➖",
}


@dataclass(frozen=True)
class Row:
    group: str
    name: str
    verdict: Verdict
    target: str = ""
    measured: str = ""
    budget: str = ""
    burn: str = ""
    key: bool = False
    weight: float = 1.0
    detail: str = ""


@dataclass(frozen=True)
class Report:
    title: str
    verdict: Verdict
    score: float | None
    reason: str
    context: dict[str, str]
    groups: dict[str, tuple[Verdict, float | None]]
    rows: list[Row]
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    item: str = "objective"
    """What a row is: an objective of a service, or a criterion of a gate."""


def _pct(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.{digits}f}".rstrip("0").rstrip(".") + "%"


def _target(o: ObjectiveResult) -> str:
    if o.unit == "req/s":
        return f"{o.comparison} {o.target:g} req/s (warn {o.warning:g})"
    return f"{o.comparison} {_pct(o.target)} (warn {_pct(o.warning)})"


def _measured(o: ObjectiveResult) -> str:
    if o.measured is None:
        return "no data"
    return f"{o.measured:.1f} req/s" if o.unit == "req/s" else _pct(o.measured)


def objective_row(o: ObjectiveResult) -> Row:
    return Row(
        group=o.service,
        name=o.objective,
        verdict=o.verdict,
        target=_target(o),
        measured=_measured(o),
        budget=_pct(o.budget_remaining, 1) if o.budget_remaining is not None else "",
        burn=f"{o.burn_rate:.2f}x" if o.burn_rate is not None else "",
        key=o.key,
        weight=o.weight,
        detail=o.detail,
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _notes(evaluation: Evaluation) -> list[str]:
    """Each note once, with the services it concerns."""
    services: dict[str, list[str]] = {}
    for service in evaluation.services:
        for note in service.notes:
            services.setdefault(note, []).append(service.service)
    return [f"{', '.join(names)}: {note}" for note, names in services.items()]


def from_evaluation(evaluation: Evaluation) -> Report:
    return Report(
        title="SLO evaluation",
        verdict=evaluation.verdict,
        score=evaluation.score,
        reason=evaluation.reason,
        context={"source": evaluation.source, "window": evaluation.window, "at": evaluation.generated_at},
        groups={s.service: (s.verdict, s.score) for s in evaluation.services},
        rows=[objective_row(o) for o in evaluation.objectives],
        data=_plain(evaluation),
        notes=_notes(evaluation),
    )


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:g}"


def print_table(report: Report, console: Console) -> None:
    table = Table(title=f"{report.title} ({', '.join(f'{k}: {v}' for k, v in report.context.items())})")
    for column in ("", report.item, "target", "measured", "verdict", "budget left", "burn"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold", min_width=30)
    last = None
    for row in report.rows:
        if row.group != last and last is not None:
            table.add_section()
        verdict, score = report.groups.get(row.group, (None, None))
        head = f"{row.group}\n[{STYLE[verdict]}]{verdict} {_score(score)}[/]" if row.group != last and verdict else ""
        last = row.group
        table.add_row(
            head,
            row.name + (" [bold](key)[/]" if row.key else ""),
            row.target,
            row.measured,
            f"[{STYLE[row.verdict]}]{row.verdict}[/]",
            row.budget,
            row.burn,
            row.detail,
        )
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    console.print(
        f"[{STYLE[report.verdict]}]{report.verdict}[/] (score {_score(report.score)}): {report.reason}",
        highlight=False,
    )


def to_json(report: Report) -> str:
    payload = {
        "title": report.title,
        "verdict": str(report.verdict),
        "score": report.score,
        "reason": report.reason,
        **report.context,
        "groups": {name: {"verdict": str(v), "score": s} for name, (v, s) in report.groups.items()},
        "results": [_plain(row) for row in report.rows],
        "notes": report.notes,
        "details": report.data,
    }
    return json.dumps(payload, indent=2, default=str) + "\n"


def to_junit(report: Report) -> str:
    """One test suite per service (or gate), one test case per objective (or criterion)."""
    suites = ET.Element("testsuites", name=report.title, tests=str(len(report.rows)))
    ET.SubElement(ET.SubElement(suites, "properties"), "property", name="verdict", value=str(report.verdict))
    for group in dict.fromkeys(row.group for row in report.rows):
        rows = [row for row in report.rows if row.group == group]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=group,
            tests=str(len(rows)),
            failures=str(sum(r.verdict is Verdict.FAIL for r in rows)),
            skipped=str(sum(r.verdict in (Verdict.SKIPPED, Verdict.INCONCLUSIVE) for r in rows)),
            errors="0",
        )
        for row in rows:
            case = ET.SubElement(suite, "testcase", classname=f"slo.{group}", name=row.name, time="0")
            message = f"{row.verdict}: measured {row.measured}, target {row.target}. {row.detail}".strip()
            if row.verdict is Verdict.FAIL:
                ET.SubElement(case, "failure", message=message, type="SLO").text = message
            elif row.verdict in (Verdict.SKIPPED, Verdict.INCONCLUSIVE):
                ET.SubElement(case, "skipped", message=message)
            ET.SubElement(case, "system-out").text = message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def to_markdown(report: Report) -> str:
    context = " · ".join(f"{k}: `{v}`" for k, v in report.context.items())
    lines = [
        f"## {EMOJI[report.verdict]} {report.title}: **{report.verdict}** (score {_score(report.score)})",
        "",
        f"Score {_score(report.score)}: {report.reason}. {context}",
        "",
        f"| | {report.item} | target | measured | verdict | budget left | burn | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        verdict, score = report.groups.get(row.group, (row.verdict, None))
        name = f"**{row.name}** (key)" if row.key else row.name
        cells = [
            f"{row.group} {EMOJI[verdict]}",
            name,
            row.target,
            row.measured,
            f"{EMOJI[row.verdict]} {row.verdict}",
            row.budget,
            row.burn,
            row.detail,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.extend(["", *(f"- {note}" for note in report.notes)] if report.notes else [])
    return "\n".join(lines) + "\n"


WRITERS = {"json": to_json, "junit": to_junit, "markdown": to_markdown}
SUFFIX = {"json": "json", "junit": "xml", "markdown": "md"}


def write_all(report: Report, out_dir: Path, stem: str) -> list[Path]:
    """Writes the JSON, JUnit and Markdown reports side by side; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, writer in WRITERS.items():
        path = out_dir / f"{stem}.{SUFFIX[kind]}"
        path.write_text(writer(report))
        paths.append(path)
    return paths
