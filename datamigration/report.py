"""The verification report: written as JSON for the phase-3 gate, shown as a table for people."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from datamigration.migrate import ServiceResult


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]


def phase3_gate(report: dict[str, Any]) -> GateVerdict:
    """Passes when every migrated table has the same rows, count and checksum, on both sides."""
    reasons = []
    tables = report.get("tables") or []
    if not tables:
        reasons.append("the report covers no table")
    for t in tables:
        name = f"{t['service']}.{t['table']}"
        if t["source_rows"] != t["target_rows"]:
            reasons.append(f"{name}: {t['source_rows']} rows in the source, {t['target_rows']} in the target")
        if t["source_checksum"] != t["target_checksum"]:
            reasons.append(f"{name}: checksums differ")
        if t["differences"]:
            reasons.append(f"{name}: {len(t['differences'])} keys differ, e.g. {t['differences'][0]!r}")
    if report.get("total_differences", 0):
        reasons.append(f"{report['total_differences']} differences in total")
    return GateVerdict(not reasons, tuple(reasons))


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def read_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def verification_table(report: dict[str, Any], *, shown_keys: int = 5) -> Table:
    out = Table(title=f"Verification at {report['verified_at']}: {report['total_differences']} differences")
    for column in ("service", "table", "source rows", "target rows", "checksums", "differing keys"):
        out.add_column(column, justify="right" if "rows" in column else "left")
    for t in report["tables"]:
        same = t["source_checksum"] == t["target_checksum"]
        keys = t["differences"]
        shown = ", ".join(json.dumps(k, default=str) for k in keys[:shown_keys]) + (
            " …" if len(keys) > shown_keys else ""
        )
        out.add_row(
            t["service"],
            t["table"],
            f"{t['source_rows']:,}",
            f"{t['target_rows']:,}",
            "[green]equal[/]" if same else f"[red]{t['source_checksum']} ≠ {t['target_checksum']}[/]",
            f"[red]{shown}[/]" if keys else "",
        )
    return out


def migration_table(results: list[ServiceResult]) -> Table:
    out = Table(title="Data migration")
    for column in ("service", "status", "rows copied", "rows written catching up", "rounds", "writes paused"):
        out.add_column(column)
    for r in results:
        paused = f"{r.cutover.writes_paused_ms:,.0f} ms" if r.cutover else ""
        out.add_row(r.service, r.status, f"{r.rows_copied:,}", f"{r.changes_written:,}", str(r.rounds), paused)
    return out
