"""A RabbitMQ node of the chaos run's own: stopping "the broker" then breaks no one else's tests.

The machine's RabbitMQ (127.0.0.1:5672) is shared with other engineers' test runs; stopping it
for a minute fails whatever they have in flight. So by default the runner starts a throwaway node
from the machine's own ``rabbitmq-server`` (about five seconds): its own node name, AMQP and
distribution ports, configuration, Mnesia and log folders. The platform under test talks to it, and
the rabbitmq-down experiment stops and starts its application with ``rabbitmqctl -n <node>``
exactly as it would the shared one's. ``stop`` halts the node and removes its folder.

The node is named in the environment (``CHAOS_RABBITMQ_NODE``, ``CHAOS_RABBITMQ_PORT``) so that
``chaos.servers`` and Chaos Toolkit run as a separate process (``--engine cli``) act on it too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from chaos.processes import free_port, reachable

ENV_NODE = "CHAOS_RABBITMQ_NODE"
ENV_PORT = "CHAOS_RABBITMQ_PORT"


class PrivateBroker:
    """One throwaway RabbitMQ node on free loopback ports."""

    def __init__(self) -> None:
        self.node = f"cerebrum-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = 0
        self.folder: Path | None = None

    @property
    def log_file(self) -> Path | None:
        return None if self.folder is None else self.folder / "log" / f"{self.node}.log"

    def ctl(self, *args: str, timeout: float = 60) -> None:
        """``rabbitmqctl -n <node> …``; raises with rabbitmqctl's own words when it fails."""
        done = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], capture_output=True, timeout=timeout)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node} failed: {said}")

    def start(self, *, timeout: float = 90.0) -> None:
        """Starts the node and waits until it accepts AMQP connections."""
        # Under /tmp, not the run's folder: the server runs as the rabbitmq user, who may not be
        # allowed into pytest's or the caller's folders.
        self.folder = Path(tempfile.mkdtemp(prefix="cerebrum-chaos-rabbitmq-"))
        self.port = free_port()
        (self.folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        _give_to_rabbitmq(self.folder)
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
        }
        done = subprocess.run(["rabbitmq-server", "-detached"], env=env, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-server did not start: {done.stderr.decode(errors='replace')[-500:]}")
        deadline = time.monotonic() + timeout
        while not reachable("127.0.0.1", self.port, timeout=0.5):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the private RabbitMQ node did not answer in {timeout:.0f}s; see {self.log_file}")
            time.sleep(0.25)
        self.ctl("await_startup", timeout=timeout)

    def export(self) -> None:
        """Names the node in this process's environment (and so in every process it starts)."""
        os.environ[ENV_NODE] = self.node
        os.environ[ENV_PORT] = str(self.port)

    def stop(self) -> None:
        """Halts the node and removes its folder; never raises."""
        if os.environ.get(ENV_NODE) == self.node:
            os.environ.pop(ENV_NODE, None)
            os.environ.pop(ENV_PORT, None)
        if self.folder is None:
            return
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            _kill(self.folder / "node.pid")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


def configured() -> tuple[str, int] | None:
    """The private node this process should act on (its name and AMQP port), if a run started one."""
    node = os.environ.get(ENV_NODE)
    return (node, int(os.environ[ENV_PORT])) if node else None


def _give_to_rabbitmq(folder: Path) -> None:
    if os.geteuid() != 0:
        return  # the server runs as whoever we are: the folder is already ours
    try:
        account = pwd.getpwnam("rabbitmq")
    except KeyError:
        return
    os.chown(folder, account.pw_uid, account.pw_gid)
    for path in folder.iterdir():
        os.chown(path, account.pw_uid, account.pw_gid)


def _kill(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
