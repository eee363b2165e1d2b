"""Renders every dashboard and the rules file, writes them, and checks the committed copies."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard, RowPanel

from dashboards.business import business_dashboard
from dashboards.metric_names import SERVICES
from dashboards.migration import migration_dashboard
from dashboards.overview import platform_overview
from dashboards.per_service import service_dashboard
from dashboards.rules import render_rules
from dashboards.slo import slo_dashboard

ROOT = Path(__file__).resolve().parent.parent
JSON_DIR = ROOT / "dashboards" / "json"
RULES_FILE = ROOT / "alerts" / "cerebrum_rules.yml"


def all_dashboards() -> list[Dashboard]:
    """Builds every dashboard."""
    builders = [
        platform_overview(),
        *(service_dashboard(service) for service in SERVICES),
        slo_dashboard(),
        migration_dashboard(),
        business_dashboard(),
    ]
    return [builder.build() for builder in builders]


def _all_panels(board: Dashboard) -> Iterator[Any]:
    for panel in board.panels or []:
        yield panel
        if isinstance(panel, RowPanel):
            yield from panel.panels


def render_dashboard(board: Dashboard) -> str:
    """A dashboard's JSON, with panel ids numbered in order so that links to a panel stay stable."""
    for number, panel in enumerate(_all_panels(board), start=1):
        panel.id_val = number
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def artefacts(json_dir: Path = JSON_DIR, rules_file: Path = RULES_FILE) -> dict[Path, str]:
    """Every generated file and its text."""
    files = {json_dir / f"{board.uid}.json": render_dashboard(board) for board in all_dashboards()}
    files[rules_file] = render_rules()
    return files


def build(json_dir: Path = JSON_DIR, rules_file: Path = RULES_FILE) -> list[Path]:
    """Writes every generated file and removes dashboards the code no longer builds."""
    files = artefacts(json_dir, rules_file)
    json_dir.mkdir(parents=True, exist_ok=True)
    for stale in set(json_dir.glob("*.json")) - set(files):
        stale.unlink()
    for path, text in files.items():
        path.write_text(text)
    return sorted(files)


def shown(path: Path) -> str:
    """A path as the reader knows it: relative to the repository when it is inside."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check(json_dir: Path = JSON_DIR, rules_file: Path = RULES_FILE) -> list[str]:
    """Says how each committed file differs from what the code builds (nothing when all match)."""
    files = artefacts(json_dir, rules_file)
    problems = []
    for path, text in sorted(files.items()):
        name = shown(path)
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        committed = path.read_text()
        if committed != text:
            diff = list(
                difflib.unified_diff(
                    committed.splitlines(),
                    text.splitlines(),
                    f"{name} (committed)",
                    f"{name} (built)",
                    n=1,
                    lineterm="",
                )
            )
            excerpt = "\n    ".join(diff[:12]) + ("\n    ..." if len(diff) > 12 else "")
            problems.append(f"{name}: differs from what the code builds\n    {excerpt}")
    for stale in sorted(set(json_dir.glob("*.json")) - set(files)):
        problems.append(f"{shown(stale)}: no longer built by the code")
    return problems
