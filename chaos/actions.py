"""Chaos Toolkit actions: break the platform on purpose, and put it right again.

Every function here is an action an experiment names as
``{"type": "python", "module": "chaos.actions", "func": "<name>"}``. Those that break something
note ``fault_started`` on the experiment's timeline, and those that mend it ``fault_ended``; the
runner turns the timeline into the time to detect and the time to recover. Every mending action
is safe to run twice, so it can sit in ``rollbacks`` as well as in the method.
"""

from __future__ import annotations

import logging
import signal as signals
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaos import control, servers
from chaos.load import Api, Load, Traffic
from chaos.recorder import MetricsRecorder
from chaos.state import append, experiment_dir, experiment_name, load, mark, timeline

Configuration = Mapping[str, Any] | None
_loads: dict[str, Load] = {}
_recorders: dict[str, MetricsRecorder] = {}
_traffic: dict[str, Traffic] = {}


# Service processes -------------------------------------------------------------------------------
def kill_service(service: str, signal: str = "SIGKILL", configuration: Configuration = None) -> dict[str, Any]:
    """Kills a service's process (SIGKILL by default: no graceful shutdown)."""
    _go_on(configuration)
    state = load(configuration)
    pid = control.kill(state, service, sig=getattr(signals, signal))
    mark("fault_started", configuration, fault=f"kill {service}", pid=pid)
    return {"service": service, "pid": pid, "signal": signal}


def restart_service(service: str, timeout: float = 90.0, configuration: Configuration = None) -> dict[str, Any]:
    """Starts a service again if it is not running, and waits until it is ready."""
    state = load(configuration)
    mark("fault_ended", configuration, fault=f"restart {service}")
    seconds = control.restart(state, service, timeout=timeout, configuration=configuration)
    return {"service": service, "ready_after_seconds": round(seconds, 3)}


# Injected faults -----------------------------------------------------------------------------------
def inject_latency(
    service: str,
    latency_ms: int,
    routes: list[str] | None = None,
    methods: list[str] | None = None,
    jitter_ms: int = 0,
    percent: float = 100.0,
    expires_after_seconds: float = 600.0,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Delays a share of a service's requests on the given routes (every route by default)."""
    _go_on(configuration)
    fault = {
        "kind": "latency",
        "routes": routes or ["/"],
        "methods": methods,
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
        "percent": percent,
        "expires_after_seconds": expires_after_seconds,
    }
    listing = control.set_faults(load(configuration), service, [fault])
    mark("fault_started", configuration, fault=f"latency {latency_ms}ms on {service}")
    return listing


def inject_errors(
    service: str,
    percent: float,
    routes: list[str] | None = None,
    methods: list[str] | None = None,
    status: int = 503,
    expires_after_seconds: float = 600.0,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Fails a share of a service's requests on the given routes with the given status."""
    _go_on(configuration)
    fault = {
        "kind": "error",
        "routes": routes or ["/"],
        "methods": methods,
        "percent": percent,
        "status": status,
        "expires_after_seconds": expires_after_seconds,
    }
    listing = control.set_faults(load(configuration), service, [fault])
    mark("fault_started", configuration, fault=f"{percent:g}% {status} on {service}")
    return listing


def clear_faults(services: list[str] | None = None, configuration: Configuration = None) -> dict[str, str]:
    """Removes every injected fault (of the named services, or all)."""
    outcome = control.clear_faults(load(configuration), services)
    mark("fault_ended", configuration, fault="faults cleared")
    return outcome


# Dependencies through the proxy ----------------------------------------------------------------------
def cut_dependency(
    dependency: str, services: list[str] | str = "*", mode: str = "reset", configuration: Configuration = None
) -> list[str]:
    """Cuts services off a dependency (postgres, redis or rabbitmq) at the proxy: reset or drop."""
    _go_on(configuration)
    names = control.switch_proxies(load(configuration), dependency, services, mode)
    mark("fault_started", configuration, fault=f"{mode} {dependency} for {services}")
    return names


def slow_dependency(
    dependency: str,
    delay_ms: int,
    services: list[str] | str = "*",
    jitter_ms: int = 0,
    configuration: Configuration = None,
) -> list[str]:
    """Delays every chunk between services and a dependency at the proxy."""
    _go_on(configuration)
    names = control.switch_proxies(
        load(configuration), dependency, services, "delay", delay_ms=delay_ms, jitter_ms=jitter_ms
    )
    mark("fault_started", configuration, fault=f"delay {dependency} {delay_ms}ms for {services}")
    return names


def restore_dependency(
    dependency: str = "*", services: list[str] | str = "*", configuration: Configuration = None
) -> list[str]:
    """Lets traffic pass again between services and a dependency (every one by default)."""
    state = load(configuration)
    if not state.proxy_control_url:
        return []
    names = control.switch_proxies(state, dependency, services, "pass")
    mark("fault_ended", configuration, fault=f"restore {dependency}")
    return names


# Real servers ------------------------------------------------------------------------------------------
def wait_for_quiet(
    timeout: float = 240.0, server: str | None = None, configuration: Configuration = None
) -> dict[str, Any]:
    """Waits until no other engineer's tests run on this machine (before breaking a shared server).

    If they keep running, the rest of the method breaks nothing and starts no load (Chaos Toolkit
    plays on after a failed activity); the runner tries the experiment again later. A server of the
    run's own (a private RabbitMQ node) is no one else's: there is nothing to wait for.
    """
    if server is not None and servers.is_private(server):
        return {"waited_seconds": 0.0, "server": server, "private": True}
    started = time.monotonic()
    try:
        servers.wait_for_quiet(timeout=timeout, say=logging.getLogger("chaostoolkit").warning)
    except servers.ServerBusy:
        mark("aborted", configuration, reason="shared servers busy")
        raise
    return {"waited_seconds": round(time.monotonic() - started, 3)}


def _go_on(configuration: Configuration) -> None:
    if any(e["event"] == "aborted" for e in timeline(experiment_dir(configuration))):
        raise RuntimeError("not done: an earlier step of this experiment gave up")


def stop_server(server: str, quiet_timeout: float = 240.0, configuration: Configuration = None) -> dict[str, Any]:
    """Stops the real PostgreSQL, Redis or RabbitMQ (a shared one once no other test run is going)."""
    _go_on(configuration)
    load(configuration)  # only against a platform under test
    try:
        seconds = servers.stop(server, quiet_timeout=quiet_timeout, say=logging.getLogger("chaostoolkit").warning)
    except servers.ServerBusy:
        mark("aborted", configuration, reason="shared servers busy")
        raise
    at = mark("fault_started", configuration, fault=f"stop {server}")
    return {"server": server, "stopped_after_seconds": round(seconds, 3), "at": at}


def start_server(server: str, timeout: float = 90.0, configuration: Configuration = None) -> dict[str, Any]:
    """Starts a real server again (if it is down) and waits until it answers."""
    if server in servers.stopped():
        mark("fault_ended", configuration, fault=f"start {server}")
    seconds = servers.start(server, timeout=timeout)
    return {"server": server, "answering_after_seconds": round(seconds, 3)}


# Load ---------------------------------------------------------------------------------------------------
def start_load(
    workers: int = 3, pause: float = 0.2, pay_share: float = 0.0, configuration: Configuration = None
) -> dict[str, Any]:
    """Starts students enrolling (and paying for ``pay_share`` of the enrolments) in the background."""
    _go_on(configuration)
    state = load(configuration)
    name = experiment_name()
    if name in _loads:
        return {"already_running": True}
    generator = Load(
        state.gateway_url, experiment_dir(configuration), workers=workers, pause=pause, pay_share=pay_share
    )
    generator.start()
    _loads[name] = generator
    return {"workers": workers, "pause": pause, "pay_share": pay_share}


def stop_load(configuration: Configuration = None) -> dict[str, Any]:
    """Stops this experiment's load and says what it did."""
    generator = _loads.pop(experiment_name(), None)
    if generator is None:
        return {"running": False}
    summary = generator.stop()
    append(experiment_dir(configuration), "load.jsonl", summary)
    return summary


def current_load() -> Load | None:
    return _loads.get(experiment_name())


def start_metrics_recording(services: list[str], configuration: Configuration = None) -> dict[str, Any]:
    """Scrapes the services' metrics now and again at ``stop_metrics_recording``, for the SLO verdicts."""
    state = load(configuration)
    name = experiment_name()
    if name not in _recorders:
        recorder = MetricsRecorder({s: state.service(s).url for s in services}, experiment_dir(configuration))
        recorder.start()
        _recorders[name] = recorder
    return {"services": services}


def stop_metrics_recording(configuration: Configuration = None) -> dict[str, Any]:
    recorder = _recorders.pop(experiment_name(), None)
    if recorder is None:
        return {"recording": False}
    recorder.stop()
    return {"recorded": sorted(recorder.last)}


def start_traffic(
    path: str,
    workers: int = 2,
    pause: float = 0.05,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Starts one new student sending a request to a gateway path over and over in the background.

    A read the gateway answers from its copy never reaches the service: to exercise a service,
    send what it must answer itself (a write, or a read it does not stamp).
    """
    _go_on(configuration)
    name = experiment_name()
    if name not in _traffic:
        traffic = Traffic(load(configuration).gateway_url, path, workers=workers, pause=pause, method=method, body=body)
        traffic.start()
        _traffic[name] = traffic
    return {"path": path, "method": method, "workers": workers}


def stop_traffic(configuration: Configuration = None) -> dict[str, int]:
    """Stops this experiment's background reads; answers their statuses and counts."""
    traffic = _traffic.pop(experiment_name(), None)
    return traffic.stop() if traffic is not None else {}


# Payment webhooks, twice and out of order ----------------------------------------------------------------
def replay_payment_webhooks(duplicates: int = 3, configuration: Configuration = None) -> dict[str, Any]:
    """Pays one enrolment the hard way: a stale failure notice, the success webhook several times at
    once, the failure notice again after it, and the browser's verification twice, last."""
    _go_on(configuration)
    state = load(configuration)
    folder = experiment_dir(configuration)
    api = Api(state.gateway_url)
    try:
        student = api.new_student(api.courses())
        course_id = student.courses_left.pop()
        enrolled = api.enrol(student, course_id)
        enrolled.raise_for_status()
        body = enrolled.json()
        order_id = body["order"]["order_id"]
        record = {
            "enrollment_id": body["enrollment_id"],
            "saga_id": body["saga_id"],
            "order_id": order_id,
            "user_id": student.user_id,
            "course_id": course_id,
        }
        append(folder, "accepted.jsonl", record)
        declined = api.checkout(student, order_id, "failure").json()
        paid = api.checkout(student, order_id, "success").json()
        mark("fault_started", configuration, fault=f"{duplicates} concurrent copies of the payment webhook")
        with ThreadPoolExecutor(duplicates) as pool:
            copies = list(pool.map(lambda _: api.webhook(paid["webhook"]), range(duplicates)))
        late_failure = api.webhook(declined["webhook"])
        verified = [api.verify(student, paid), api.verify(student, paid)]
        replayed = api.webhook(paid["webhook"])
        payment_ids = {v.json().get("payment_id") for v in verified if v.status_code == 200}
        append(folder, "paid.jsonl", {**record, "payment_id": next(iter(payment_ids), None)})
        return {
            "order_id": order_id,
            "webhooks": [c.json().get("status") if c.status_code == 200 else c.status_code for c in copies],
            "late_failure": late_failure.json().get("status")
            if late_failure.status_code == 200
            else late_failure.status_code,
            "verify": [v.status_code for v in verified],
            "payment_ids": sorted(p for p in payment_ids if p),
            "replayed": replayed.json().get("status") if replayed.status_code == 200 else replayed.status_code,
        }
    finally:
        api.close()
