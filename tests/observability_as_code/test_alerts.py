"""The alert and recording rules: valid for promtool, unit-tested, each alert with a runbook."""

from __future__ import annotations

import shutil
import subprocess

import promql_parser
import pytest
import yaml

from dashboards import metric_names as m
from dashboards.rules import alerts
from observability.metrics import PROBE_ROUTES
from tests.observability_as_code.promql import ALL_RULE_FILES, ROOT, RULE_FILES, parse, rules

ALERT_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks"
SECTIONS = ("## What it means", "## How to confirm", "## What to do")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed; install it with: apt-get install -y prometheus")
    return subprocess.run([binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_rules_pass_promtool_check() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    assert ALERT_TESTS
    result = promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in ALERT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules() if "alert" in rule}
    assert names - fires == set(), "alerts with no unit test where they fire"
    assert names - quiet == set(), "alerts with no unit test where they stay quiet"


def test_every_alert_says_how_bad_what_and_where_its_runbook_is() -> None:
    for rule in (r for r in rules() if "alert" in r):
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
        runbook = ROOT / annotations["runbook_url"]
        assert runbook.exists(), f"{name}: no runbook at {annotations['runbook_url']}"
        text = runbook.read_text()
        assert text.startswith(f"# {name}\n"), runbook
        for section in SECTIONS:
            assert section in text, f"{runbook.name} has no {section!r}"


def test_every_runbook_belongs_to_an_alert() -> None:
    # Ours, plus those the SLO checker generates into alerts/slo/ (it has no runbook_url yet).
    names = {rule["alert"] for rule in rules(ALL_RULE_FILES) if "alert" in rule}
    assert {a.name for a in alerts()} <= names
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages <= names, f"runbooks of no alert: {pages - names}"
    assert {a.name for a in alerts()} <= pages
    index = (RUNBOOKS / "README.md").read_text()
    assert all(f"[{name}.md]" in index for name in pages)
    for page in pages:
        text = (RUNBOOKS / f"{page}.md").read_text()
        assert all(section in text for section in SECTIONS), page


def test_the_plans_three_alerts_are_kept_on_our_labels() -> None:
    by_name = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    assert by_name["HighErrorRate"]["for"] == "2m" and "sum by (service)" in by_name["HighErrorRate"]["expr"]
    assert by_name["HighLatency"]["for"] == "3m"
    assert (
        'sum by (le, service) (rate(http_request_duration_seconds_bucket{route!~"/health|/ready|/metrics"}[5m]))'
        in by_name["HighLatency"]["expr"]
    )
    assert by_name["DatabaseConnectionsHigh"]["expr"].startswith("sum by (instance) (pg_stat_activity_count)")


def test_alert_tests_load_the_rules_they_test() -> None:
    for path in ALERT_TESTS:
        files = yaml.safe_load(path.read_text())["rule_files"]
        assert [(path.parent / f).resolve() for f in files] == [ROOT / "alerts" / "cerebrum_rules.yml"], path


def test_every_rule_over_http_traffic_counts_served_requests_only() -> None:
    """Probes and scrapes answer 200 every few seconds: counted, they hide a route failing 100%."""
    http = {m.HTTP_REQUESTS, m.HTTP_DURATION_BUCKET, m.HTTP_DURATION_COUNT, f"{m.HTTP_DURATION}_sum"}
    served = 0
    for rule in rules(ALL_RULE_FILES):
        where = rule.get("alert") or rule.get("record")

        def visit(node: object, where: object = where) -> None:
            nonlocal served
            if isinstance(node, promql_parser.VectorSelector) and node.name in http:
                routes = [(str(x.op), x.value) for x in node.matchers.matchers if x.name == "route"]
                # Probes out, always; an objective scoped to some routes adds its own route matcher.
                assert routes[0] == ("MatchOp.NotRe", "|".join(PROBE_ROUTES)), f"{where}: {node}"
                assert all(op in ("MatchOp.Re", "MatchOp.NotRe") for op, _ in routes[1:]), f"{where}: {node}"
                served += 1

        promql_parser.walk(parse(rule["expr"]), visit)
    assert served > 0
