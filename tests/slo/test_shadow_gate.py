"""Phase 6 reads shadow traffic: a candidate that answers differently is refused, route and field named.

The gateway of test_phase6 (real split, weights and shadow shares, served by uvicorn), whose two
fake sides differ in one field of every answer: each names itself in ``side``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cerebrum.shadow_cli import shadow_app
from slo.cli import slo_app
from tests.slo.test_phase6 import Canary, _said, canary  # noqa: F401  (canary: the fixture)


def test_the_gate_refuses_a_step_whose_mirrored_answers_differ(canary: Canary, tmp_path: Path) -> None:  # noqa: F811
    cli = CliRunner()
    auth = ["--url", canary.url, "--admin-token", canary.admin]
    assert cli.invoke(shadow_app, ["set", "courses", "10", *auth]).exit_code == 0  # 10% is enough to judge
    assert cli.invoke(shadow_app, ["set", "courses", "150", *auth]).exit_code == 1, "percent is 0..100"
    assert cli.invoke(shadow_app, ["set", "courses", "100", *auth]).exit_code == 0
    cli.invoke(shadow_app, ["set", "nope", "5", *auth])  # an unknown prefix changes nothing

    put = httpx.put(
        f"{canary.url}/gateway/weights/courses",
        json={"weight": 10},
        headers={"Authorization": f"Bearer {canary.admin}"},
    )
    assert put.status_code == 200

    args = ["gate", "--phase", "6", "--url", canary.url, "--prefix", "courses", "--requests", "40", "--students", "40"]
    args += ["--promote", "--admin-token", canary.admin, "--out", str(tmp_path / "gate")]
    refused = cli.invoke(slo_app, args)
    assert refused.exit_code == 1, _said(refused, tmp_path / "gate")
    assert canary.weight() == 0, "rolled back: the candidate answers differently"
    report = json.loads((tmp_path / "gate" / "slo-gate-phase-6.json").read_text())
    [shadow] = [row for row in report["results"] if row["name"] == "shadow-diffs"]
    assert (
        str(shadow["verdict"]).lower() == "fail"
        and "GET /courses" in shadow["detail"]
        and "body.side" in shadow["detail"]
    )
    assert "100.0% of" in shadow["detail"]

    table = cli.invoke(shadow_app, ["report", *auth])
    assert table.exit_code == 0 and "GET /courses" in table.output and "body.side" in table.output
    as_json = json.loads(cli.invoke(shadow_app, ["report", "--json", *auth]).output)
    [route] = [r for r in as_json["routes"] if r["route"].startswith("GET /courses")]
    assert route["diff_rate"] == 1.0 and route["top_fields"][0]["example"]["monolith"] == "monolith"
    assert as_json["shares"]["courses"] == 100
