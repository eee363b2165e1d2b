"""The ``cerebrum`` section of a Chaos Toolkit journal: time to detect, time to recover, and a verdict.

Times come from the experiment's timeline: the fault started (the first breaking action), was
detected (the first probe or alert condition that saw it), was repaired (the first mending
action) and the steady state was back (``await_recovery``). Detection and recovery are both
counted from the start of the fault, and judged against the migration plan's targets: detected
within 2 minutes, recovered within 15.
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


def summarise(journal: dict[str, Any], folder: Path, *, started_at: float, finished_at: float) -> dict[str, Any]:
    """Builds the ``cerebrum`` section for one experiment's journal."""
    events = timeline(folder)
    fault = _first(events, "fault_started", None)
    repaired = _first(events, "fault_ended", fault)
    detected = _first(events, "detected", fault)
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
    if mttd is None or mttd > MTTD_TARGET_SECONDS:
        reasons.append(f"time to detect {mttd}s (target < {MTTD_TARGET_SECONDS:g}s)")
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
        "detected_by": next((e.get("signal") for e in events if e["event"] == "detected"), None),
        "timeline": events,
        "method_failures": method_failures,
        "rollback_failures": rollback_failures,
        "accepted": sum(1 for _ in records(folder, "accepted.jsonl")),
        "paid": sum(1 for _ in records(folder, "paid.jsonl")),
        "load": load[-1] if load else None,
        "duration_seconds": round(finished_at - started_at, 3),
    }
