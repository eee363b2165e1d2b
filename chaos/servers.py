"""Stopping and starting the machine's real PostgreSQL, Redis and RabbitMQ, briefly and safely.

They are shared with other engineers' tests, so a stop first waits until no other pytest runs on
the machine, every stop is written down (in memory and in a file beside the run) and ``restore``
starts whatever we stopped, whatever happened meanwhile. Prefer the proxy (``chaos.proxy``),
which cuts only our own processes off, or a node of the run's own: when the runner started a
private RabbitMQ node (``chaos.broker``), "rabbitmq" means that node, and stopping it waits for no one.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from chaos import broker
from chaos.processes import reachable

log = structlog.get_logger("cerebrum.chaos.servers")
_lock = threading.Lock()
_stopped: set[str] = set()
LEDGER_ENV = "CEREBRUM_CHAOS_LEDGER"


class ServerBusy(RuntimeError):
    """Other engineers' tests kept running: the shared server was left alone."""


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    stop: Callable[[], None]
    start: Callable[[], None]
    private: bool = False  # only this run uses it


def _run(argv: list[str], *, timeout: float = 120) -> None:
    done = subprocess.run(argv, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).decode()[-500:]}")


def _pg_version() -> str:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


def _pg(action: str) -> None:
    argv = ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action]
    _run([*argv, "-m", "fast"] if action == "stop" else argv)


def _redis_start() -> None:
    _run(
        [
            "redis-server",
            "--daemonize", "yes",
            "--bind", "127.0.0.1", "-::1",
            "--port", "6379",
            "--save", "",
            "--appendonly", "no",
            "--dir", "/var/lib/redis",
            "--logfile", "/var/log/redis/ci.log",
        ]
    )  # fmt: skip


SERVERS = {
    "postgresql": Server("postgresql", 5432, lambda: _pg("stop"), lambda: _pg("start")),
    "redis": Server("redis", 6379, lambda: _run(["redis-cli", "shutdown", "nosave"]), _redis_start),
    "rabbitmq": Server(
        "rabbitmq", 5672, lambda: _run(["rabbitmqctl", "stop_app"]), lambda: _run(["rabbitmqctl", "start_app"])
    ),
}


def server(name: str) -> Server:
    """The server a name means here: the run's private RabbitMQ node when there is one."""
    private = broker.configured() if name == "rabbitmq" else None
    if private is None:
        return SERVERS[name]
    node, port = private
    ctl = ["rabbitmqctl", "-n", node]
    return Server(name, port, lambda: _run([*ctl, "stop_app"]), lambda: _run([*ctl, "start_app"]), private=True)


def is_private(name: str) -> bool:
    return server(name).private


def _own_family() -> set[int]:
    """This process, its ancestors and its descendants: our own pytest does not count."""
    family = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        family.add(pid)
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    queue = [os.getpid()]
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in family:
                family.add(child)
                queue.append(child)
    return family


def _is_pytest(pid: int) -> bool:
    """Whether a process runs pytest (``pytest …``, ``python -m pytest …``), not merely names a pytest folder."""
    try:
        argv = [os.fsdecode(a) for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return False
    if not argv:
        return False
    program, rest = os.path.basename(argv[0]), argv[1:]
    if program in ("pytest", "py.test"):
        return True
    if not program.startswith("python"):
        return False
    if "-m" in rest and rest[rest.index("-m") + 1 : rest.index("-m") + 2] == ["pytest"]:
        return True
    return bool(rest) and os.path.basename(rest[0]) in ("pytest", "py.test")


def other_test_runs() -> list[int]:
    """Ids of pytest runs on this machine that are not ours (a path under /tmp/pytest-of-… is not one)."""
    done = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True)
    found = {int(line) for line in done.stdout.split()}
    return sorted(pid for pid in found - _own_family() if _is_pytest(pid))


def wait_for_quiet(*, timeout: float, poll: float = 2.0, say: Callable[[str], None] | None = None) -> None:
    """Waits until no other engineer's pytest runs; raises ServerBusy after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        others = other_test_runs()
        if not others:
            return
        if time.monotonic() >= deadline:
            raise ServerBusy(f"other test runs kept going for {timeout:.0f}s (pids {others}); nothing was stopped")
        if not announced and say is not None:
            say(f"waiting for other test runs to finish before stopping a shared server (pids {others})")
            announced = True
        time.sleep(poll)


def wait_until(name: str, *, up: bool, timeout: float = 60.0) -> float:
    """Waits until a server answers (or stops answering) on its port; returns the seconds it took."""
    target = server(name)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _answers(target) == up:
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"{name} still {'down' if up else 'up'} after {timeout:.0f}s")


def _answers(server: Server) -> bool:
    if not reachable("127.0.0.1", server.port, timeout=1):
        return False
    if server.name == "postgresql":
        ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"], capture_output=True)
        return ready.returncode == 0
    if server.name == "redis":
        pong = subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True, timeout=5)
        return pong.stdout.strip() == "PONG"
    return True


def _ledger() -> Path | None:
    path = os.environ.get(LEDGER_ENV)
    return Path(path) if path else None


def _write_ledger() -> None:
    path = _ledger()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(_stopped)))


def stopped() -> set[str]:
    """The servers this process (or an earlier, crashed run using the same ledger) stopped."""
    with _lock:
        names = set(_stopped)
    path = _ledger()
    if path is not None and path.exists():
        names |= set(json.loads(path.read_text()))
    return names


def stop(name: str, *, quiet_timeout: float = 240.0, say: Callable[[str], None] | None = None) -> float:
    """Stops a server (a shared one once no one else is testing); returns the seconds until it stopped answering."""
    target = server(name)
    if not target.private:
        wait_for_quiet(timeout=quiet_timeout, say=say)
    with _lock:
        _stopped.add(name)  # written down before the stop: a crash mid-stop still gets it restored
        _write_ledger()
    log.warning("chaos_server_stopping", server=name, port=target.port, private=target.private)
    target.stop()
    return wait_until(name, up=False, timeout=60)


def start(name: str, *, timeout: float = 90.0) -> float:
    """Starts a server (if it is not answering) and waits until it answers; returns the seconds it took."""
    target = server(name)
    started = time.monotonic()
    if not _answers(target):
        target.start()
        wait_until(name, up=True, timeout=timeout)
    with _lock:
        _stopped.discard(name)
        _write_ledger()
    log.warning("chaos_server_started", server=name)
    return time.monotonic() - started


def restore(say: Callable[[str], None] | None = None) -> list[str]:
    """Starts every server we stopped and has not come back; returns their names. Never raises."""
    restored = []
    for name in sorted(stopped()):
        for attempt in range(3):
            try:
                start(name)
                restored.append(name)
                if say is not None:
                    say(f"restored {name}")
                break
            except Exception as exc:  # keep trying the others, and this one again
                log.error("chaos_server_restore_failed", server=name, attempt=attempt, error=str(exc)[:300])
                time.sleep(2)
    return restored
