"""Which service emitted a series, and which panels of a service's dashboard its service never feeds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser

from tests.observability_as_code import promql
from tests.observability_as_code.emitted import Scrape

SERVICES_DIR = promql.ROOT / "services"


@dataclass(frozen=True)
class Used:
    """The /metrics of a platform that was used end to end, and which of its services consume events."""

    scrape: Scrape
    consumers: dict[str, bool]

    def label_values(self, metric: str, service: str, label: str) -> set[str]:
        """The values of ``label`` on the series of ``metric`` that ``service`` emitted."""
        found = set()
        for labels in self.scrape.values.get(metric, {}):
            named = dict(labels)
            if named.get("service") == service and label in named:
                found.add(named[label])
        return found

    def emits(self, metric: str, service: str, service_labelled: bool) -> bool:
        """A metric labelled by service must have a series of this service; any other, a series at all
        and be declared in this service's own code (the only place it is counted)."""
        series = self.scrape.values.get(metric, {})
        if service_labelled:
            return any(dict(labels).get("service") == service for labels in series)
        return bool(series) and declared_by(metric, service)


def use_the_platform(out_dir: Path) -> Used:
    """Runs tests/observability_as_code/usage.py in a process of its own and reads what it scraped."""
    out = out_dir / "used.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.observability_as_code.usage", str(out)],
        cwd=promql.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"using the platform failed:\n{done.stderr[-4000:]}"
    data = json.loads(out.read_text())
    return Used(Scrape.parse(data["exposition"]), data["consumers"])


@cache
def code_of(service: str) -> str:
    """The source of a service's package, all files together."""
    return "\n".join(path.read_text() for path in sorted((SERVICES_DIR / service).rglob("*.py")))


def declared_by(metric: str, service: str) -> bool:
    """Whether the service's own code declares the metric (a histogram by its family's name)."""
    names = {metric, *(metric.removesuffix(suffix) for suffix in ("_bucket", "_count", "_sum"))}
    return any(f'"{name}"' in code_of(service) for name in names)


@cache
def recorded_from() -> dict[str, frozenset[str]]:
    """Each recording rule's name, and the metrics its expression reads."""
    found: dict[str, set[str]] = {}
    for rule in promql.rules(promql.ALL_RULE_FILES):
        if "record" in rule:
            found.setdefault(rule["record"], set()).update(s.metric for s in promql.selectors(rule["expr"]))
    return {name: frozenset(metrics) for name, metrics in found.items()}


def source_metrics(metric: str) -> Iterator[str]:
    """The metric itself, or for a recorded series the metrics it is recorded from, to the bottom."""
    recorded = recorded_from()
    if metric not in recorded:
        yield metric
        return
    for source in recorded[metric]:
        yield from source_metrics(source)


def equal_matchers(expr: str) -> list[tuple[str, dict[str, str]]]:
    """Every selector of a query: its metric and its ``label="value"`` matchers."""
    found: list[tuple[str, dict[str, str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            equal = {m.name: m.value for m in node.matchers.matchers if m.op == promql_parser.MatchOp.Equal}
            found.append((node.name, equal))

    promql_parser.walk(promql.parse(expr), visit)
    return found


def dead_panels(board: dict[str, Any], service: str, used: Used, declared: dict[str, frozenset[str]]) -> list[str]:
    """Panels of a service's dashboard showing a metric that service did not emit, or another service's series."""
    problems = []
    for panel in promql._panels(board.get("panels") or []):
        for target in panel.get("targets") or []:
            for metric, matchers in equal_matchers(target.get("expr", "")):
                where = f"{board['uid']} panel {panel.get('title')!r}: {metric}"
                by_service = metric in recorded_from() or "service" in declared.get(metric, frozenset())
                if by_service and matchers.get("service") != service:
                    problems.append(f'{where} does not pick service="{service}": other services\' series show')
                for source in source_metrics(metric):
                    labelled = "service" in declared.get(source, frozenset())
                    if not used.emits(source, service, labelled):
                        problems.append(f"{where}: {service} never emits {source}")
    return problems
