"""Phases 1 to 5: each gate file's criteria on the inputs it reads, scored, with reports for CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from typer.testing import CliRunner

from slo.cli import slo_app
from slo.gate import run_gate, to_report
from slo.gate_model import GateInputs, load_gate
from slo.report import to_junit, to_markdown
from slo.scoring import Verdict
from slo.spec import ServiceSpec, SpecError
from tests.slo.conftest import FIXTURES, ROOT

runner = CliRunner()


def _run_folder(tmp_path: Path, peak_users: int = 10) -> Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "locust-stats.json", run / "stats.json")
    (run / "run.json").write_text(json.dumps({"peak_users": peak_users, "seconds": 12.0}))
    return run


def test_every_phase_has_a_gate_file() -> None:
    names = [load_gate(phase).name for phase in range(1, 7)]
    assert names == ["extraction", "infrastructure", "data-migration", "integration", "testing", "production"]


def test_a_bad_gate_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "gate.yaml"
    bad.write_text("phase: 3\nname: x\ncriteria:\n  - {name: c, check: astrology}\n")
    with pytest.raises(SpecError, match=r"gate\.yaml: criteria\[0\]\.check: Input should be 'slo', "):
        load_gate(3, bad)


def test_phase_1_the_extracted_service_passes_under_load(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    args = ["gate", "--phase", "1", "--service", "courses", "--stats", str(_run_folder(tmp_path)), "--out", str(out)]
    result = runner.invoke(slo_app, args)
    assert result.exit_code == 0, result.output
    assert "contract-tests" in result.output and "SKIPPED" in result.output, "an optional criterion without input"
    junit = ET.parse(out / "slo-gate-phase-1.xml").getroot()
    assert junit.get("name") == "Migration gate, phase 1 (extraction)"
    assert {s.get("name") for s in junit.iter("testsuite")} == {"phase 1: extraction", "courses"}
    assert "**PASS**" in (out / "slo-gate-phase-1.md").read_text()


def test_phase_2_ready_rules_and_dashboards(tmp_path: Path, specs: dict[str, ServiceSpec]) -> None:
    (tmp_path / "alerts" / "slo").mkdir(parents=True)
    shutil.copy(ROOT / "alerts" / "slo" / "slo_rules.yml", tmp_path / "alerts" / "slo" / "slo_rules.yml")
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "red.json").write_text(json.dumps({"title": "RED", "panels": []}))
    ready = {"status": 200}

    def platform(request: httpx.Request) -> httpx.Response:
        return httpx.Response(ready["status"], json={"status": "ok" if ready["status"] == 200 else "redis down"})

    inputs = GateInputs(specs=specs, repo_root=tmp_path, url="http://academy", transport=httpx.MockTransport(platform))
    assert run_gate(load_gate(2), inputs).verdict is Verdict.PASS
    ready["status"] = 503
    failed = run_gate(load_gate(2), inputs)
    assert failed.verdict is Verdict.FAIL
    assert "redis down" in next(c for c in failed.criteria if c.name == "services-ready").detail


def _reconciliation(tmp_path: Path, target_rows: int, differences: list[dict[str, str]]) -> Path:
    report = {
        "tables": [
            {"table": "users.users", "source_rows": 1200, "target_rows": 1200, "differences": []},
            {"table": "courses.courses", "source_rows": 40, "target_rows": target_rows, "differences": differences},
        ],
        "total_differences": len(differences),
    }
    path = tmp_path / f"reconciliation-{target_rows}.json"
    path.write_text(json.dumps(report))
    return path


def test_phase_3_zero_rows_lost(tmp_path: Path) -> None:
    ok = runner.invoke(slo_app, ["gate", "--phase", "3", "--reconciliation", str(_reconciliation(tmp_path, 40, []))])
    assert ok.exit_code == 0, ok.output
    lost = _reconciliation(tmp_path, 39, [{"id": "c-7", "kind": "missing"}])
    failed = runner.invoke(slo_app, ["gate", "--phase", "3", "--reconciliation", str(lost), "--format", "json"])
    assert failed.exit_code == 1
    assert "courses.courses: 40 → 39 rows, 1 differences" in json.loads(failed.stdout)["results"][0]["detail"]
    missing = runner.invoke(slo_app, ["gate", "--phase", "3"])
    assert missing.exit_code == 2 and "INCONCLUSIVE" in missing.output, "no report never passes"


def test_phase_4_journeys_pass_and_events_are_delivered(tmp_path: Path, specs: dict[str, ServiceSpec]) -> None:
    junit = tmp_path / "journeys.xml"
    junit.write_text('<testsuites><testsuite name="journeys" tests="12" failures="0" errors="0"/></testsuites>')
    metrics = {"dead": 0}

    def platform(request: httpx.Request) -> httpx.Response:
        text = (
            "# TYPE cerebrum_events_published_total counter\n"
            'cerebrum_events_published_total{service="courses",event="course.created"} 10\n'
            "# TYPE cerebrum_events_dead_lettered_total counter\n"
            f'cerebrum_events_dead_lettered_total{{service="payments",event="order.paid"}} {metrics["dead"]}\n'
            "# TYPE cerebrum_outbox_pending_events gauge\n"
            'cerebrum_outbox_pending_events{service="courses"} 0\n'
        )
        return httpx.Response(200, text=text)

    inputs = GateInputs(specs=specs, junit=[junit], url="http://academy", transport=httpx.MockTransport(platform))
    assert run_gate(load_gate(4), inputs).verdict is Verdict.PASS
    metrics["dead"] = 2
    assert run_gate(load_gate(4), inputs).verdict is Verdict.FAIL
    junit.write_text('<testsuite name="journeys" tests="12" failures="1" errors="0"/>')
    metrics["dead"] = 0
    result = run_gate(load_gate(4), inputs)
    assert result.verdict is Verdict.FAIL and result.criteria[0].measured == "11/12 passed"


def _journal(tmp_path: Path, name: str, status: str, met: bool) -> Path:
    path = tmp_path / f"{name}.json"
    journal = {"experiment": {"title": name}, "status": status, "steady_states": {"after": {"steady_state_met": met}}}
    path.write_text(json.dumps(journal))
    return path


def test_phase_5_target_users_every_slo_and_chaos(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, peak_users=10)
    held = [_journal(tmp_path, "redis-down", "completed", True), _journal(tmp_path, "broker-down", "completed", True)]
    base = ["gate", "--phase", "5", "--stats", str(run), "-s", "courses", "--target-users", "10"]
    chaos = [arg for path in held for arg in ("--chaos", str(path))]
    short = runner.invoke(slo_app, base + chaos + ["--format", "json"])
    assert short.exit_code == 2, "a 12 s, 8-user run is too small to judge 500 req/s"
    results = json.loads(short.stdout)["results"]
    throughput = next(r for r in results if r["group"] == "courses" and r["name"] == "throughput")
    assert throughput["verdict"] == "INCONCLUSIVE" and "of 1000 needed" in throughput["detail"]
    broken = _journal(tmp_path, "db-down", "failed", False)
    result = runner.invoke(slo_app, base + ["--chaos", str(broken), "--format", "json"])
    details = {r["name"]: r for r in json.loads(result.stdout)["results"]}
    assert details["chaos-experiments"]["verdict"] == "FAIL" and "db-down" in details["chaos-experiments"]["detail"]
    assert details["target-users"]["verdict"] == "PASS"
    too_few = runner.invoke(slo_app, base[:-1] + ["10000", "--format", "json"] + chaos)
    assert json.loads(too_few.stdout)["results"][0]["verdict"] == "FAIL"


def test_reports_render_for_ci_and_pull_requests(tmp_path: Path, specs: dict[str, ServiceSpec]) -> None:
    result = run_gate(load_gate(3), GateInputs(specs=specs, reconciliation=_reconciliation(tmp_path, 40, [])))
    report = to_report(result)
    suites = ET.fromstring(to_junit(report))
    assert suites.find("testsuite/testcase").get("name") == "zero-rows-lost"  # type: ignore[union-attr]
    assert to_markdown(report).startswith("## ✅ Migration gate, phase 3 (data-migration): **PASS** (score 100)")
