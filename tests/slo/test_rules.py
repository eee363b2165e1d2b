"""The committed rules are what the specs give, promtool accepts them, and their unit tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from slo.burn import BURN_WINDOWS
from slo.queries import scope_matchers
from slo.rules import render, stale, write
from slo.spec import ServiceSpec
from tests.slo.conftest import ROOT

ALERTS = ROOT / "alerts" / "slo"
PROMTOOL = shutil.which("promtool")


def test_the_committed_files_are_what_the_specs_generate(specs: dict[str, ServiceSpec]) -> None:
    for name, text in render(specs).items():
        path = ALERTS / name
        assert path.exists(), f"{path} is missing: run `cerebrum slo rules`"
        assert path.read_text() == text, f"{path} is out of date: run `cerebrum slo rules`"


def test_the_workbook_factors_for_30_days_and_derived_for_28() -> None:
    thirty, twenty_eight = 30 * 86400, 28 * 86400
    assert [w.factor(thirty) for w in BURN_WINDOWS] == [14.4, 6.0, 3.0, 1.0]
    assert [w.factor(twenty_eight) for w in BURN_WINDOWS] == [13.44, 5.6, 2.8, 0.9333]


def test_alert_thresholds_are_factor_times_the_specs_budget(specs: dict[str, ServiceSpec]) -> None:
    rules = yaml.safe_load((ALERTS / "slo_rules.yml").read_text())
    group = next(g for g in rules["groups"] if g["name"] == "slo-payments")
    page = next(
        r
        for r in group["rules"]
        if r.get("alert") and r["labels"] == {**r["labels"], "severity": "page", "slo": "availability"}
    )
    assert "slo:sli_error:ratio_rate1h" in page["expr"] and "(14.4 * 0.0005)" in page["expr"]
    assert "slo:sli_error:ratio_rate30m" in page["expr"] and "(6 * 0.0005)" in page["expr"]
    recorded = {r["record"] for r in group["rules"] if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in recorded
    assert "slo:error_budget_remaining:ratio" in recorded


def test_no_burn_alert_judges_fewer_requests_than_its_spec_needs(specs: dict[str, ServiceSpec]) -> None:
    rules = yaml.safe_load((ALERTS / "slo_rules.yml").read_text())
    for group in rules["groups"]:
        spec = specs[group["name"].removeprefix("slo-")]
        for rule in (r for r in group["rules"] if r.get("alert")):
            severity, objective = rule["labels"]["severity"], spec.objective(rule["labels"]["slo"])
            # Every window pair of the alert, on its long window, served traffic only (of the
            # objective's own routes, when it has some).
            scope = "".join(f",{m}" for m in scope_matchers(objective.routes))
            for burn in (b for b in BURN_WINDOWS if b.severity == severity):
                guard = f'route!~"/health|/ready|/metrics"{scope}}}[{burn.long}])) >= {objective.minimum_requests}'
                assert guard in rule["expr"], (spec.service, objective.name, severity, burn.long)
            assert rule["for"] == {"page": "2m", "ticket": "1h"}[severity]


def _one_file_per_test_group(test_file: Path, folder: Path) -> list[Path]:
    """The file's test groups, each in a file of its own beside the same settings and rule files.

    promtool runs a file's groups one after another on one core; the groups share nothing, so
    run apart they prove the same and finish in a fraction of the time on a machine with cores to spare.
    """
    tests = yaml.safe_load(test_file.read_text())
    rule_files = [str((test_file.parent / rule).resolve()) for rule in tests["rule_files"]]
    files = []
    for number, group in enumerate(tests["tests"]):
        one = folder / f"{test_file.stem}-{number}.yml"
        one.write_text(yaml.safe_dump({**tests, "rule_files": rule_files, "tests": [group]}, sort_keys=False))
        files.append(one)
    return files


def test_promtool_checks_the_rules_and_passes_their_unit_tests(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    checked = subprocess.run([PROMTOOL, "check", "rules", "slo_rules.yml"], cwd=ALERTS, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    files = sorted(Path(ALERTS / "tests").glob("*.yml"))
    assert [f.name for f in files] == ["slo_rules_test.yml"]
    groups = _one_file_per_test_group(files[0], tmp_path)
    assert len(groups) == len(yaml.safe_load(files[0].read_text())["tests"]) >= 7

    def promtool_test(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        tested = list(pool.map(promtool_test, groups))
    failed = [
        f"{path.name}:\n{done.stdout}{done.stderr}"
        for path, done in zip(groups, tested, strict=True)
        if done.returncode
    ]
    assert not failed, "\n".join(failed)
    assert all("SUCCESS" in done.stdout for done in tested)


def test_the_rules_command_reports_out_of_date_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from slo.cli import slo_app

    runner = CliRunner()
    stale = runner.invoke(slo_app, ["rules", "--out", str(tmp_path), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    written = runner.invoke(slo_app, ["rules", "--out", str(tmp_path)])
    assert written.exit_code == 0
    assert runner.invoke(slo_app, ["rules", "--out", str(tmp_path), "--check"]).exit_code == 0


def test_a_test_file_the_specs_no_longer_give_is_out_of_date_and_removed(
    specs: dict[str, ServiceSpec], tmp_path: Path
) -> None:
    write(specs, tmp_path)
    retired = tmp_path / "tests" / "users.yml"
    retired.write_text("rule_files: [../slo_rules.yml]\ntests: []\n")
    assert stale(specs, tmp_path) == [retired]
    assert retired in write(specs, tmp_path)
    assert not retired.exists() and stale(specs, tmp_path) == []
