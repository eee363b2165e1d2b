"""Running servers pinned to one core and wrk pinned to the other, and reading wrk's answers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

OUT = Path("bench/out")
CORES = os.cpu_count() or 1
SERVER_CPU = "0"
LOAD_CPU = "1" if CORES > 1 else "0"


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    command: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    """Finds wrk, installing Debian's package when it is missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: installing wrk (Debian package)…", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench needs wrk: apt-get install wrk")
    return found


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


@contextmanager
def server(name: str, env: dict[str, str], port: int, probe: str) -> Iterator[str]:
    """Runs ``bench.apps:app`` under uvicorn on the server core until the block ends."""
    OUT.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    log = open(OUT / f"{safe}.log", "wb")  # noqa: SIM115 - closed below, after the process
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.apps:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    process = subprocess.Popen(pinned(SERVER_CPU, argv), env={**os.environ, **env}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + probe, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: server {name} did not start; see {OUT / (safe + '.log')}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, seconds: int, connections: int = 16, headers: dict[str, str] | None = None) -> WrkResult:
    """Runs wrk on the load core and reads throughput and latency percentiles."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(url)
    out = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    shown = " ".join(a if not a.startswith("Authorization") else "Authorization: Bearer $TOKEN" for a in argv)
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0, shown)
