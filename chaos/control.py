"""The platform's knobs and gauges as plain functions: processes, faults, proxies, readiness, metrics.

``chaos.actions`` and ``chaos.probes`` are thin Chaos Toolkit entry points over these.
"""

from __future__ import annotations

import fnmatch
import signal
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.processes import alive, spawn, terminate, wait_ready
from chaos.state import PlatformState, ProcessInfo, save, state_path

PROBE_ROUTES = ("/health", "/ready", "/metrics")
TIMEOUT = httpx.Timeout(5.0)


def _require_managed(state: PlatformState, what: str) -> None:
    if not state.managed:
        raise RuntimeError(f"{what} needs a platform the chaos runner started (not one given with --url)")


# Processes -------------------------------------------------------------------------------------
def kill(state: PlatformState, name: str, *, sig: int = signal.SIGKILL) -> int:
    """Kills a service's process group (SIGKILL: no shutdown, as a crash or OOM kill would)."""
    _require_managed(state, "killing a process")
    info = state.service(name)
    if info.pid is None or not alive(info.pid):
        raise RuntimeError(f"{name} is not running")
    pid = info.pid
    terminate(pid, sig=sig, grace=10)
    return pid


def restart(
    state: PlatformState, name: str, *, timeout: float = 90.0, configuration: Mapping[str, Any] | None = None
) -> float:
    """Starts a service again from its recorded command (if it is not running); seconds until ready."""
    _require_managed(state, "restarting a process")
    info: ProcessInfo = state.service(name)
    started = time.monotonic()
    if info.pid is None or not alive(info.pid):
        info.pid = spawn(info, cwd=state.cwd or ".")
        save(state, state_path(configuration))
    if not wait_ready(info.url, timeout=timeout, pid=info.pid):
        raise RuntimeError(f"{name} did not become ready within {timeout:.0f}s; see {info.log}")
    return time.monotonic() - started


# Readiness and HTTP ----------------------------------------------------------------------------
def readiness(url: str) -> dict[str, Any]:
    """``{"ready": bool, "status": int, "failed": [...]}``; status 0 when nothing answers."""
    try:
        reply = httpx.get(url + "/ready", timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return {"ready": False, "status": 0, "failed": ["process"], "error": type(exc).__name__}
    failed: list[str] = []
    if reply.status_code != 200 and reply.headers.get("content-type", "").endswith("json"):
        failed = list(reply.json().get("failed", []))
    return {"ready": reply.status_code == 200, "status": reply.status_code, "failed": failed}


def all_ready(state: PlatformState, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    return {name: readiness(state.service(name).url) for name in (names or state.services)}


def gateway_status(
    state: PlatformState, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None
) -> int:
    try:
        return httpx.request(method, state.gateway_url + path, timeout=TIMEOUT, headers=dict(headers or {})).status_code
    except httpx.HTTPError:
        return 0


# Faults ------------------------------------------------------------------------------------------
def _fault_headers(state: PlatformState) -> dict[str, str]:
    if not state.chaos_token:
        raise RuntimeError("no chaos token for this platform: its services take no faults")
    return {"X-Chaos-Token": state.chaos_token}


def set_faults(state: PlatformState, name: str, faults: list[dict[str, Any]]) -> dict[str, Any]:
    reply = httpx.put(
        state.service(name).url + "/chaos/faults",
        json={"faults": faults},
        headers=_fault_headers(state),
        timeout=TIMEOUT,
    )
    reply.raise_for_status()
    listing: dict[str, Any] = reply.json()
    return listing


def clear_faults(state: PlatformState, names: Iterable[str] | None = None) -> dict[str, str]:
    """Clears every fault of the named services (all by default); reports any it could not reach."""
    outcome = {}
    for name in names or state.services:
        try:
            reply = httpx.delete(
                state.service(name).url + "/chaos/faults", headers=_fault_headers(state), timeout=TIMEOUT
            )
            outcome[name] = "cleared" if reply.status_code == 200 else f"status {reply.status_code}"
        except httpx.HTTPError as exc:
            outcome[name] = f"unreachable ({type(exc).__name__})"
    return outcome


def faults_left(state: PlatformState) -> dict[str, int]:
    left = {}
    for name in state.services:
        try:
            reply = httpx.get(state.service(name).url + "/chaos/faults", headers=_fault_headers(state), timeout=TIMEOUT)
            if reply.status_code == 200 and reply.json()["faults"]:
                left[name] = len(reply.json()["faults"])
        except httpx.HTTPError:
            continue
    return left


# Proxies -----------------------------------------------------------------------------------------
def proxies(state: PlatformState) -> dict[str, dict[str, Any]]:
    if not state.proxy_control_url:
        raise RuntimeError("this platform runs without the chaos proxy")
    reply = httpx.get(state.proxy_control_url + "/proxies", timeout=TIMEOUT)
    reply.raise_for_status()
    listing: dict[str, dict[str, Any]] = reply.json()
    return listing


def switch_proxies(
    state: PlatformState,
    dependency: str,
    services: str | list[str],
    mode: str,
    *,
    delay_ms: int = 0,
    jitter_ms: int = 0,
) -> list[str]:
    """Sets the mode of every ``<service>.<dependency>`` listener matching; returns their names."""
    _require_managed(state, "switching a proxy")
    wanted = [services] if isinstance(services, str) else services
    names = [
        name for name in proxies(state) if any(fnmatch.fnmatch(name, f"{service}.{dependency}") for service in wanted)
    ]
    if not names:
        raise ValueError(f"no proxy matches {wanted} for {dependency}")
    for name in names:
        reply = httpx.put(
            f"{state.proxy_control_url}/proxies/{name}",
            json={"mode": mode, "delay_ms": delay_ms, "jitter_ms": jitter_ms},
            timeout=TIMEOUT,
        )
        reply.raise_for_status()
    return names


def proxies_not_passing(state: PlatformState) -> list[str]:
    if not state.proxy_control_url:
        return []
    try:
        return sorted(name for name, p in proxies(state).items() if p["mode"] != "pass")
    except httpx.HTTPError:
        return ["<proxy unreachable>"]


# Metrics -------------------------------------------------------------------------------------------
def scrape(url: str) -> str:
    reply = httpx.get(url + "/metrics", headers={"Accept": "text/plain; version=0.0.4"}, timeout=TIMEOUT)
    reply.raise_for_status()
    return reply.text


def metric_total(text: str, sample_name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of every sample of that name whose labels include the given ones."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                total += sample.value
    return total


def request_counts(text: str) -> dict[str, float]:
    """Requests, server errors (5xx) and 500s in one exposition, probes left out (as the SLO rules do)."""
    counts = {"requests": 0.0, "errors": 0.0, "internal": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != "http_requests_total" or sample.labels.get("route") in PROBE_ROUTES:
                continue
            status = sample.labels.get("status", "")
            counts["requests"] += sample.value
            if status.startswith("5"):
                counts["errors"] += sample.value
            if status == "500":
                counts["internal"] += sample.value
    return counts
