"""The experiments as files, the journal's cerebrum section, and the shared-server etiquette: no servers needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from chaos import runner, servers
from chaos.journal import summarise
from chaos.state import append

EXPERIMENTS = runner.discover()


def test_there_are_seven_experiments_in_their_order() -> None:
    assert list(EXPERIMENTS) == [
        "kill-service",
        "rabbitmq-down",
        "postgres-cut",
        "redis-down",
        "payments-latency",
        "users-errors",
        "webhook-duplicates",
    ]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_experiment_is_valid_chaos_toolkit(name: str) -> None:
    experiment = json.loads(EXPERIMENTS[name].read_text())
    # Validates every python provider too: the module imports and the arguments fit the function.
    ensure_experiment_is_valid(experiment)
    assert experiment["steady-state-hypothesis"]["probes"]
    assert any(a["provider"]["func"] == "await_detection" for a in experiment["method"])
    assert any(a["provider"]["func"] == "await_recovery" for a in experiment["method"])
    breaks = {"kill_service", "stop_server", "cut_dependency", "inject_latency", "inject_errors"}
    if any(a["provider"]["func"] in breaks for a in experiment["method"]):
        assert experiment["rollbacks"], f"{name} breaks something and must mend it in its rollbacks"


def _journal(before: bool, after: bool, failed: bool = False) -> dict[str, object]:
    run = [{"activity": {"name": "claim"}, "status": "failed" if failed else "succeeded", "exception": ["boom\n"]}]
    return {
        "status": "completed",
        "steady_states": {"before": {"steady_state_met": before}, "after": {"steady_state_met": after}},
        "run": run,
        "rollbacks": [],
    }


def test_the_cerebrum_section_measures_from_the_fault(tmp_path: Path) -> None:
    for event, at in (("fault_started", 100.0), ("detected", 103.5), ("fault_ended", 130.0), ("recovered", 142.25)):
        append(tmp_path, "timeline.jsonl", {"event": event, "at": at})
    append(tmp_path, "accepted.jsonl", {"enrollment_id": "e"})
    section = summarise(_journal(True, True), tmp_path, started_at=90.0, finished_at=150.0)
    assert section["verdict"] == "passed" and section["reasons"] == []
    assert section["time_to_detect_seconds"] == 3.5
    assert section["time_to_recover_seconds"] == 42.25
    assert section["time_to_recover_after_repair_seconds"] == 12.25
    assert section["accepted"] == 1 and section["duration_seconds"] == 60.0


def test_a_slow_detection_or_a_broken_claim_fails_the_run(tmp_path: Path) -> None:
    append(tmp_path, "timeline.jsonl", {"event": "fault_started", "at": 0.0})
    append(tmp_path, "timeline.jsonl", {"event": "detected", "at": 121.0})
    append(tmp_path, "timeline.jsonl", {"event": "recovered", "at": 901.0})
    section = summarise(_journal(True, False, failed=True), tmp_path, started_at=0.0, finished_at=1000.0)
    assert section["verdict"] == "failed"
    assert section["method_failures"] == [{"name": "claim", "error": "boom"}]
    assert len(section["reasons"]) == 4  # steady state after, the failed claim, detection, recovery


def _sleeper(folder: Path, name: str) -> Path:
    script = folder / name
    script.write_text("import time\ntime.sleep(30)\n")
    return script


def _orphan(argv: list[str]) -> int:
    """Starts a process whose parent exits at once: it belongs to no one here, like another engineer's."""
    quoted = " ".join(f"'{a}'" for a in argv)
    shell = subprocess.run(["sh", "-c", f"{quoted} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    return int(shell.stdout.strip())


def test_our_own_pytest_and_its_children_do_not_count_as_another_engineers(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, str(_sleeper(tmp_path, "pytest"))])
    try:
        seen = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
        assert str(child.pid) in seen  # pgrep sees a pytest run...
        others = servers.other_test_runs()
        assert child.pid not in others and os.getpid() not in others  # ...but it is ours
    finally:
        child.kill()
        child.wait()


def test_another_pytest_run_counts_and_a_process_in_a_pytest_folder_does_not(tmp_path: Path) -> None:
    folder = tmp_path / "pytest-of-someone"
    folder.mkdir()
    another_run = _orphan([sys.executable, str(_sleeper(tmp_path, "pytest"))])
    in_a_folder = _orphan([sys.executable, str(_sleeper(folder, "server.py")), "--data", str(folder)])
    try:
        others = servers.other_test_runs()
        assert another_run in others
        assert in_a_folder not in others, "a server started from a test's folder is not a test run"
    finally:
        for pid in (another_run, in_a_folder):
            os.kill(pid, 9)


def test_a_stopped_server_is_remembered_in_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "stopped.json"
    monkeypatch.setenv(servers.LEDGER_ENV, str(ledger))
    ledger.write_text(json.dumps(["rabbitmq"]))
    # A crashed earlier run left RabbitMQ stopped: the next run's restore finds it in the ledger.
    assert "rabbitmq" in servers.stopped()
