"""What the probes watch: the fault's start, the signals that show it, and the steady state's checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from chaos import control
from chaos.actions import current_load
from chaos.load import Api
from chaos.reconcile import outbox_backlog, reconcile
from chaos.state import PlatformState, experiment_dir, load, records, timeline

Configuration = Mapping[str, Any] | None
CATALOGUE = "/api/courses"


def reconciliation(configuration: Configuration = None) -> dict[str, Any]:
    """Accepted against delivered for this experiment's load (see ``chaos.reconcile``)."""
    state = load(configuration)
    if state.database_url is None:
        return {"ok": True, "skipped": "no database URL for this platform"}
    folder = experiment_dir(configuration)
    return reconcile(
        state.database_url, accepted=list(records(folder, "accepted.jsonl")), paid=list(records(folder, "paid.jsonl"))
    )


def fault_started(configuration: Configuration) -> float | None:
    starts = [e["at"] for e in timeline(experiment_dir(configuration)) if e["event"] == "fault_started"]
    return max(starts) if starts else None


def signal_seen(signal: Mapping[str, Any], configuration: Configuration, since: float) -> bool:
    state = load(configuration)
    kind = signal["kind"]
    if kind == "not_ready":
        ready = control.readiness(state.service(signal["service"]).url)
        dependency = signal.get("dependency")
        return not ready["ready"] and (dependency is None or dependency in ready["failed"])
    if kind == "gateway_status":
        wanted = signal["status"] if isinstance(signal["status"], list) else [signal["status"]]
        return control.gateway_status(state, signal["path"]) in {int(s) for s in wanted}
    if kind == "load_status":
        generator = current_load()
        wanted = signal["status"] if isinstance(signal["status"], list) else [signal["status"]]
        return generator is not None and any(generator.latencies(signal["step"], int(s), since) for s in wanted)
    if kind == "metric":
        value = control.metric_total(
            control.scrape(state.service(signal["service"]).url), signal["metric"], signal.get("labels")
        )
        baseline = baselines(configuration).get(signal["baseline"], 0.0) if "baseline" in signal else 0.0
        return value > baseline + float(signal.get("above", 0.0))
    if kind == "outbox_backlog":
        older = float(signal.get("older_than_seconds", 3.0))  # the relay sends within a second when it can
        backlog = outbox_backlog(state.database_url, older_than=older) if state.database_url else {}
        return sum(backlog.values()) >= int(signal.get("min", 1))
    raise ValueError(f"no such signal: {kind}")


def steady_problems(configuration: Configuration, checks: Mapping[str, Any]) -> dict[str, Any]:
    """What keeps the platform from its steady state right now (nothing: steady)."""
    state = load(configuration)
    problems: dict[str, Any] = {}
    not_ready = {n: r["failed"] for n, r in control.all_ready(state).items() if not r["ready"]}
    if not_ready:
        problems["not_ready"] = not_ready
    for probe in checks.get("gateway", [{"path": CATALOGUE, "status": 200}]):
        status = control.gateway_status(state, probe["path"])
        if status != probe.get("status", 200):
            problems.setdefault("gateway", {})[probe["path"]] = status
    if checks.get("enrol") and not problems:
        # Before the breakers are read: a breaker past its open period closes only on the next call
        # through it, and once the students have stopped, this enrolment is that call.
        api = Api(state.gateway_url)
        try:
            student = api.new_student(api.courses())
            status = api.enrol(student, student.courses_left.pop()).status_code
        except httpx.HTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0)
        finally:
            api.close()
        if status != 201:
            problems["enrol"] = status
    open_breakers = _open_breakers(state, checks.get("breakers_closed", []))
    if open_breakers:
        problems["breakers_open"] = open_breakers
    if checks.get("reconcile", True) and not problems:
        outcome = reconciliation(configuration)
        if not outcome["ok"]:
            problems["reconciliation"] = outcome["problems"]
    return problems


def _open_breakers(state: PlatformState, breakers: list[dict[str, str]]) -> list[str]:
    """The named ``service->upstream`` breakers whose state metric says open or half-open."""
    found = []
    for breaker in breakers:
        text = control.scrape(state.service(breaker["service"]).url)
        labels = {"service": breaker["service"], "upstream": breaker["upstream"]}
        if control.metric_total(text, "cerebrum_circuit_breaker_state", labels) != 0:
            found.append(f"{breaker['service']}->{breaker['upstream']}")
    return found


def baselines(configuration: Configuration) -> dict[str, float]:
    path = experiment_dir(configuration) / "baselines.json"
    return json.loads(path.read_text()) if path.exists() else {}
