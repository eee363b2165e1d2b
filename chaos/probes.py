"""Chaos Toolkit probes: is the platform well, did we notice the fault, is everything accounted for.

Steady-state probes answer True or False (``"tolerance": true``). ``await_detection`` and
``await_recovery`` poll until the fault shows (or the steady state is back) and note
``detected`` / ``recovered`` on the experiment's timeline. The ``expect_*`` probes raise when
what the experiment claims does not hold, so a broken claim fails its activity in the journal.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from chaos import control, servers
from chaos.actions import current_load
from chaos.alerts import Expectations, Rules
from chaos.load import Api
from chaos.prometheus import alerts_now
from chaos.reconcile import outbox_backlog
from chaos.recorder import slo_verdicts
from chaos.state import experiment_dir, load, mark
from chaos.watch import (
    CATALOGUE,
    Configuration,
    baselines,
    fault_started,
    reconciliation,
    signal_seen,
    steady_problems,
)


# Steady state --------------------------------------------------------------------------------------
def platform_ready(configuration: Configuration = None) -> bool:
    """Every process answers /ready with 200."""
    return all(r["ready"] for r in control.all_ready(load(configuration)).values())


def service_ready(service: str, configuration: Configuration = None) -> bool:
    return bool(control.readiness(load(configuration).service(service).url)["ready"])


def readiness(configuration: Configuration = None) -> dict[str, dict[str, Any]]:
    """Every process's readiness, with the dependencies it names as failed."""
    return control.all_ready(load(configuration))


def gateway_answers(path: str = CATALOGUE, status: int = 200, configuration: Configuration = None) -> bool:
    return control.gateway_status(load(configuration), path) == status


def no_fault_left(configuration: Configuration = None) -> bool:
    """No injected fault, no proxy cutting anything, no real server stopped by us."""
    state = load(configuration)
    return not control.faults_left(state) and not control.proxies_not_passing(state) and not servers.stopped()


def outboxes_drained(configuration: Configuration = None) -> bool:
    state = load(configuration)
    return state.database_url is None or not any(outbox_backlog(state.database_url).values())


def nothing_lost(configuration: Configuration = None) -> bool:
    """Everything accepted was delivered exactly once; nothing is left half-way."""
    return bool(reconciliation(configuration)["ok"])


# Detection and recovery ----------------------------------------------------------------------------
def await_detection(
    signals: list[dict[str, Any]], timeout: float = 120.0, interval: float = 0.25, configuration: Configuration = None
) -> dict[str, Any]:
    """Polls until any signal shows the fault; notes ``detected``. Raises if none does in time."""
    fault_at = fault_started(configuration)
    if fault_at is None:
        raise AssertionError("no fault was started (its action failed?): there is nothing to detect")
    deadline = time.monotonic() + timeout
    while True:
        for signal in signals:
            try:
                seen = signal_seen(signal, configuration, fault_at)
            except (httpx.HTTPError, OSError):
                seen = False
            if seen:
                at = mark("detected", configuration, signal=signal)
                return {"detected": True, "signal": signal, "seconds_after_fault": round(at - fault_at, 3)}
        if time.monotonic() > deadline:
            raise AssertionError(f"the fault was not detected within {timeout:.0f}s by any of {signals}")
        time.sleep(interval)


def await_recovery(
    timeout: float = 900.0,
    interval: float = 0.5,
    stable_for: int = 2,
    checks: dict[str, Any] | None = None,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Polls until the steady state holds ``stable_for`` times in a row; notes ``recovered``.

    Checks: every process ready, the gateway paths (the catalogue by default), the breakers
    named in ``breakers_closed``, a fresh enrolment when ``enrol`` is set, and (unless
    ``reconcile`` is false) the reconciliation of everything this experiment's load was told.
    """
    fault_at = fault_started(configuration) or time.time()
    deadline = time.monotonic() + timeout
    streak, last = 0, {}
    while time.monotonic() < deadline:
        try:
            last = steady_problems(configuration, checks or {})
        except (httpx.HTTPError, OSError) as exc:
            last = {"error": repr(exc)}
        streak = 0 if last else streak + 1
        if streak >= stable_for:
            at = mark("recovered", configuration)
            return {"recovered": True, "seconds_after_fault": round(at - fault_at, 3)}
        time.sleep(interval)
    raise AssertionError(f"the steady state did not return within {timeout:.0f}s; last seen: {json.dumps(last)[:1500]}")


def await_alerts(interval: float = 0.5, configuration: Configuration = None) -> dict[str, Any]:
    """Holds the fault until every alert the experiment names fires in the run's Prometheus.

    The alerts and their deadlines come from the runner (``alerts-expected.json``: the experiment's
    ``cerebrum-alerts`` extension) and the rule files the run's Prometheus loaded. Raises once every
    alert still missing is past its deadline. When the run does not wait for this experiment's
    alerts, answers what is firing now and goes on.
    """
    state = load(configuration)
    plan = json.loads((experiment_dir(configuration) / "alerts-expected.json").read_text())
    expectations = Expectations.from_json(plan)
    if not state.prometheus_url:
        raise AssertionError("this run has no Prometheus: no alert can be judged")
    if not plan["awaited"] or not expectations.fire:
        firing = [a["labels"] for a in alerts_now(state.prometheus_url) if a["state"] == "firing"]
        return {"awaited": False, "firing_now": firing}
    fault_at = fault_started(configuration)
    if fault_at is None:
        raise AssertionError("no fault was started (its action failed?): no alert can be expected")
    rules = Rules.load(Path(p) for p in state.rule_files)
    deadlines = [rules.deadline(m)["seconds"] for m in expectations.fire]
    fired: dict[int, float] = {}
    while True:
        now = time.time()
        for alert in alerts_now(state.prometheus_url):
            if alert["state"] != "firing" or alert["active_at"] < plan["started_at"] - 1:
                continue  # inherited from an earlier experiment, or not firing yet
            for n, matcher in enumerate(expectations.fire):
                if n not in fired and matcher.matches(alert["labels"]):
                    fired[n] = round(now - fault_at, 3)
                    mark("alert_firing", configuration, alert=alert["labels"], after_fault_seconds=fired[n])
        missing = [n for n in range(len(deadlines)) if n not in fired]
        if not missing:
            after = {expectations.fire[n].describe(): seconds for n, seconds in fired.items()}
            return {"awaited": True, "fired_after_seconds": after}
        if all(now - fault_at > deadlines[n] for n in missing):
            late = ", ".join(f"{expectations.fire[n].describe()} (deadline {deadlines[n]:.0f}s)" for n in missing)
            raise AssertionError(f"not fired in the run's Prometheus: {late}")
        time.sleep(interval)


# Claims about what happened during the fault ---------------------------------------------------------
def remember_metric(
    key: str, service: str, metric: str, labels: dict[str, str] | None = None, configuration: Configuration = None
) -> float:
    """Notes a metric's value now, for a later ``metric`` signal or ``expect_metric`` to compare with."""
    value = control.metric_total(control.scrape(load(configuration).service(service).url), metric, labels)
    known = baselines(configuration)
    known[key] = value
    (experiment_dir(configuration) / "baselines.json").write_text(json.dumps(known))
    return value


def remember_server_errors(configuration: Configuration = None) -> dict[str, float]:
    """Notes every process's count of 500 answers, for ``expect_no_new_500s``."""
    state = load(configuration)
    counts = {
        name: control.request_counts(control.scrape(info.url))["internal"] for name, info in state.services.items()
    }
    known = baselines(configuration)
    known.update({f"500s:{name}": value for name, value in counts.items()})
    (experiment_dir(configuration) / "baselines.json").write_text(json.dumps(known))
    return counts


def await_signal(
    signal: dict[str, Any], timeout: float = 60.0, interval: float = 0.5, configuration: Configuration = None
) -> dict[str, Any]:
    """Polls until one signal (as ``await_detection`` takes them) shows; raises after ``timeout``."""
    since = fault_started(configuration) or time.time()
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if signal_seen(signal, configuration, since):
                return {"seen": True, "after_seconds": round(time.monotonic() - started, 3)}
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(interval)
    raise AssertionError(f"{signal} did not show within {timeout:.0f}s")


def expect_answers(
    path: str, count: int = 20, status: int = 200, as_student: bool = True, configuration: Configuration = None
) -> dict[str, int]:
    """Raises unless ``count`` GETs of a gateway path all answer ``status``."""
    state = load(configuration)
    api = Api(state.gateway_url)
    try:
        headers = api.new_student([]).auth if as_student else {}
        seen: dict[str, int] = {}
        for _ in range(count):
            code = str(api.http.get(path, headers=headers).status_code)
            seen[code] = seen.get(code, 0) + 1
    finally:
        api.close()
    if set(seen) != {str(status)}:
        raise AssertionError(f"GET {path}: {seen} (all {status} expected)")
    return seen


def expect_no_new_500s(configuration: Configuration = None) -> dict[str, float]:
    """Raises if any process answered 500 since ``remember_server_errors``: outages must be 503s."""
    state = load(configuration)
    known = baselines(configuration)
    new = {}
    for name, info in state.services.items():
        count = control.request_counts(control.scrape(info.url))["internal"]
        if count > known.get(f"500s:{name}", 0.0):
            new[name] = count - known.get(f"500s:{name}", 0.0)
    if new:
        raise AssertionError(f"500s during the fault: {new}")
    return new


def expect_metric(
    service: str,
    metric: str,
    labels: dict[str, str] | None = None,
    above: float | None = None,
    baseline: str | None = None,
    configuration: Configuration = None,
) -> float:
    """Raises unless a metric is above a value (plus a remembered baseline)."""
    value = control.metric_total(control.scrape(load(configuration).service(service).url), metric, labels)
    floor = (above or 0.0) + (baselines(configuration).get(baseline, 0.0) if baseline else 0.0)
    if not value > floor:
        raise AssertionError(f"{metric}{labels or ''} on {service} is {value:g}, expected above {floor:g}")
    return value


def expect_fast_503s(
    step: str = "enrol", max_median_ms: float = 250.0, min_count: int = 3, configuration: Configuration = None
) -> dict[str, Any]:
    """Raises unless the load got 503s since the fault, answered fast (the breaker, not a timeout)."""
    generator = current_load()
    since = fault_started(configuration) or 0.0
    latencies = generator.latencies(step, 503, since) if generator is not None else []
    if len(latencies) < min_count:
        raise AssertionError(f"only {len(latencies)} 503s on {step} since the fault (at least {min_count} expected)")
    median_ms = statistics.median(latencies) * 1000
    if median_ms > max_median_ms:
        raise AssertionError(
            f"503s on {step} took {median_ms:.0f}ms (median); a breaker answers in {max_median_ms:g}ms"
        )
    return {"count": len(latencies), "median_ms": round(median_ms, 1), "max_ms": round(latencies[-1] * 1000, 1)}


def expect_requests_succeed(
    steps: list[str], min_share: float = 0.95, min_count: int = 3, configuration: Configuration = None
) -> dict[str, Any]:
    """Raises unless the load's requests of those steps mostly succeeded (2xx) since the fault."""
    generator = current_load()
    if generator is None:
        raise AssertionError("no load is running")
    summary = generator.summary(since=fault_started(configuration))
    shares = {}
    for step in steps:
        counts = summary["by_step"].get(step, {})
        total = sum(counts.values())
        good = sum(n for status, n in counts.items() if status.startswith("2"))
        if total < min_count or good / total < min_share:
            raise AssertionError(f"{step}: {good}/{total} succeeded during the fault ({counts})")
        shares[step] = round(good / total, 3)
    return {"success_share": shares, "summary": summary}


def expect_outbox_backlog(
    min_events: int = 1, older_than_seconds: float = 3.0, configuration: Configuration = None
) -> dict[str, int]:
    """Raises unless at least ``min_events`` events have waited in the outboxes that long (the broker is away)."""
    state = load(configuration)
    backlog = outbox_backlog(state.database_url, older_than=older_than_seconds) if state.database_url else {}
    if sum(backlog.values()) < min_events:
        raise AssertionError(f"only {sum(backlog.values())} events wait in the outboxes: {backlog}")
    return backlog


def expect_problem(
    path: str,
    status: int = 503,
    dependency: str | None = None,
    method: str = "GET",
    as_student: bool = True,
    json_body: dict[str, Any] | None = None,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Raises unless the gateway answers a problem+json with that status, naming the dependency."""
    state = load(configuration)
    api = Api(state.gateway_url)
    try:
        headers, user_id = {}, "00000000-0000-0000-0000-000000000000"
        if as_student:
            student = api.new_student([])
            headers, user_id = student.auth, student.user_id
        reply = api.http.request(method, path.format(user_id=user_id), headers=headers, json=json_body)
    finally:
        api.close()
    body = reply.json() if reply.headers.get("content-type", "").endswith("json") else {}
    if reply.status_code != status or (dependency is not None and body.get("dependency") != dependency):
        raise AssertionError(f"{method} {path}: {reply.status_code} {body} (expected {status} naming {dependency})")
    return {"status": reply.status_code, "dependency": body.get("dependency"), "detail": body.get("detail")}


def slo_verdict(service: str, configuration: Configuration = None) -> dict[str, Any]:
    """The SLO evaluator's and the gate's verdicts on the recorded metrics (after recording stops)."""
    return slo_verdicts(service, load(configuration).service(service).url, experiment_dir(configuration))


def expect_slo_verdict(service: str, verdict: str = "FAIL", configuration: Configuration = None) -> dict[str, Any]:
    outcome = slo_verdict(service, configuration)
    if outcome.get("gate_verdict") != verdict or outcome.get("evaluator_verdict") != verdict:
        raise AssertionError(f"expected the SLO verdicts for {service} to be {verdict}: {outcome}")
    return outcome


def expect_reconciled(configuration: Configuration = None) -> dict[str, Any]:
    outcome = reconciliation(configuration)
    if not outcome["ok"]:
        raise AssertionError(f"reconciliation failed: {json.dumps(outcome['problems'])[:2000]}")
    return outcome
