"""Processes of a chaos run: starting one from its recorded command, telling whether it lives, stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

import httpx

from chaos.state import ProcessInfo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn(info: ProcessInfo, *, cwd: str) -> int:
    """Starts a process from its recorded command and environment; returns its id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update(info.env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH")]))
    if info.log:
        with open(info.log, "ab") as log:
            popen = subprocess.Popen(
                info.argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
    else:
        popen = subprocess.Popen(info.argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, start_new_session=True)
    return popen.pid


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead too
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def terminate(pid: int | None, *, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stops a process group we started, escalating to SIGKILL after the grace period."""
    if pid is None or not alive(pid):
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def terminate_all(pids: list[int | None], *, grace: float = 15.0) -> None:
    """Stops several process groups at once: SIGTERM to all, then SIGKILL to whatever is left."""
    running = [pid for pid in pids if pid is not None and alive(pid)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in running:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def wait_ready(url: str, *, timeout: float, pid: int | None = None, path: str = "/ready") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            return False
        try:
            if httpx.get(url + path, timeout=3).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False
