"""The ``cerebrum`` section of a Chaos Toolkit journal: time to detect, time to recover, and a verdict.

Times come from the experiment's timeline: the fault started (the first breaking action), was
repaired (the first mending action) and the steady state was back (``await_recovery``), and from
the run's Prometheus: the fault is detected when the first alert the experiment names fires
(``chaos.alerts``), and each alert it names must fire within the deadline its rule implies.
An experiment that names no alert (or a run that does not wait for them) is detected by the first
probe that saw the fault, within the migration plan's 2 minutes. Recovery is judged against the
plan's 15 minutes. Both are counted from the start of the fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.state import records, timeline

MTTD_TARGET_SECONDS = 120.0
MTTR_TARGET_SECONDS = 900.0


def _first(events: list[dict[str, Any]], name: str, after: float | None) -> float | None:
    times = [e["at"] for e in events if e["event"] == name and (after is None or e["at"] >= after)]
    return min(times) if times else None


def _failed(activities: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"name": str(a.get("activity", {}).get("name")), "error": str(a.get("exception", [""])[-1]).strip()[:500]}
        for a in activities
        if a.get("status") != "succeeded"
    ]


def _met(journal: dict[str, Any], when: str) -> bool | None:
    state = (journal.get("steady_states") or {}).get(when) or {}
    met = state.get("steady_state_met")
    return bool(met) if met is not None else None


def fault_time(folder: Path) -> float | None:
    return _first(timeline(folder), "fault_started", None)


def _alert_detection(alerts: dict[str, Any] | None) -> tuple[float | None, str | None] | None:
    """When the first named alert fired, and which; None when detection is not the alerts' to say."""
    expected = [a for a in (alerts or {}).get("expected", []) if a["awaited"]]
    if not expected:
        return None
    fired = [a for a in expected if a["firing_at"] is not None]
    if not fired:
        return None, None
    first = min(fired, key=lambda a: a["firing_at"])
    return first["firing_at"], first["alert"]


def summarise(
    journal: dict[str, Any],
    folder: Path,
    *,
    started_at: float,
    finished_at: float,
    alerts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Builds the ``cerebrum`` section for one experiment's journal (``alerts``: ``chaos.alerts.judge``'s verdict)."""
    events = timeline(folder)
    fault = _first(events, "fault_started", None)
    repaired = _first(events, "fault_ended", fault)
    by_alert = _alert_detection(alerts)
    signalled = _first(events, "detected", fault)
    detected = by_alert[0] if by_alert is not None else signalled
    recovered = _first(events, "recovered", fault)
    mttd = round(detected - fault, 3) if fault is not None and detected is not None else None
    mttr = round(recovered - fault, 3) if fault is not None and recovered is not None else None
    method_failures = _failed(journal.get("run") or [])
    rollback_failures = _failed(journal.get("rollbacks") or [])
    before, after = _met(journal, "before"), _met(journal, "after")
    reasons = []
    if journal.get("status") != "completed":
        reasons.append(f"status {journal.get('status')}")
    if before is not True or after is not True:
        reasons.append(f"steady state before {before}, after {after}")
    if method_failures:
        reasons.append(f"{len(method_failures)} method activities failed")
    if by_alert is None and (mttd is None or mttd > MTTD_TARGET_SECONDS):
        reasons.append(f"time to detect {mttd}s (target < {MTTD_TARGET_SECONDS:g}s)")
    reasons += (alerts or {}).get("reasons", [])
    if mttr is None or mttr > MTTR_TARGET_SECONDS:
        reasons.append(f"time to recover {mttr}s (target < {MTTR_TARGET_SECONDS:g}s)")
    load = list(records(folder, "load.jsonl"))
    return {
        "verdict": "passed" if not reasons else "failed",
        "reasons": reasons,
        "steady_state_before": before,
        "steady_state_after": after,
        "fault_started_at": fault,
        "fault_repaired_at": repaired,
        "detected_at": detected,
        "recovered_at": recovered,
        "time_to_detect_seconds": mttd,
        "time_to_recover_seconds": mttr,
        "time_to_recover_after_repair_seconds": (
            round(recovered - repaired, 3) if recovered is not None and repaired is not None else None
        ),
        "targets": {"time_to_detect_seconds": MTTD_TARGET_SECONDS, "time_to_recover_seconds": MTTR_TARGET_SECONDS},
        "detected_by": (
            {"alert": by_alert[1]}
            if by_alert is not None
            else next((e.get("signal") for e in events if e["event"] == "detected"), None)
        ),
        "first_signal_at": signalled,
        "within_plan_detection_target": mttd is not None and mttd <= MTTD_TARGET_SECONDS,
        "alerts": alerts,
        "timeline": events,
        "method_failures": method_failures,
        "rollback_failures": rollback_failures,
        "accepted": sum(1 for _ in records(folder, "accepted.jsonl")),
        "paid": sum(1 for _ in records(folder, "paid.jsonl")),
        "load": load[-1] if load else None,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": round(finished_at - started_at, 3),
    }
