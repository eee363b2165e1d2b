"""A rule file that cannot fire fails the experiment that needs it, and the run's Prometheus is gone after.

The run loads a copy of the repository's rules in which ``ServiceDown`` compares ``up`` with 2 (and
waits for nothing, so that its deadline is seconds, not a minute): killing the enrollments process
then never fires it, and kill-service must fail on that, whatever else it proves. Killing a service
stops no server, so the platform uses a vhost on the shared RabbitMQ rather than starting a node of
its own (half a minute or more on a busy machine).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from chaos import runner, servers
from chaos.processes import alive, reachable
from chaos.prometheus import RULE_FILES
from tests.conftest import require_server

pytestmark = pytest.mark.integration


def _rules_where_service_down_never_fires(folder: Path) -> list[Path]:
    alerts, slo = RULE_FILES
    rules = yaml.safe_load(alerts.read_text())
    (service_down,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ServiceDown"]
    service_down["expr"] = "up == 2"
    service_down.pop("for", None)
    wrong = folder / "cerebrum_rules.yml"
    wrong.write_text(yaml.safe_dump(rules, sort_keys=False))
    return [wrong, slo]


def test_a_wrong_rule_file_fails_the_experiment_and_prometheus_is_stopped(tmp_path: Path) -> None:
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    log = io.StringIO()
    try:
        (outcome,) = runner.run(
            ["kill-service"],
            out_dir=tmp_path / "out",
            console=Console(file=log, width=120),
            rule_files=_rules_where_service_down_never_fires(tmp_path),
            private_broker=False,
        )
    finally:
        servers.restore()
        (tmp_path / "console.log").write_text(log.getvalue())
    cerebrum = outcome.cerebrum
    assert not outcome.passed
    assert any(r.startswith('ServiceDown{job=~"enrollments"} did not fire') for r in cerebrum["reasons"]), cerebrum
    assert [f["name"] for f in cerebrum["method_failures"]] == ["the-named-alerts-fire"]
    assert cerebrum["alerts"]["expected"][0]["firing_at"] is None

    state = json.loads(Path(cerebrum["platform_file"]).read_text())
    assert state["rule_files"][0] == str(tmp_path / "cerebrum_rules.yml")
    assert not alive(state["prometheus_pid"]), "the run's Prometheus still runs"
    assert not reachable("127.0.0.1", int(state["prometheus_url"].rsplit(":", 1)[1]), timeout=0.5)
