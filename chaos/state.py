"""What the actions and probes know about the platform under test, and what each run has seen.

The runner writes a platform file (addresses, process ids and how to restart each process, proxy
ports, the private database, vhost and Redis prefix) and names it in ``CEREBRUM_CHAOS_STATE``;
every action and probe reads it, so they work the same in the runner's process and under the
``chaos run`` command. Each experiment gets a folder of its own (``CEREBRUM_CHAOS_EXPERIMENT``)
holding its timeline (fault started, detected, recovered) and what its load had accepted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_ENV = "CEREBRUM_CHAOS_STATE"
EXPERIMENT_ENV = "CEREBRUM_CHAOS_EXPERIMENT"
_lock = threading.Lock()


@dataclass
class ProcessInfo:
    """A process the runner started, and how to start it again."""

    name: str
    url: str
    port: int
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Only the variables the runner set on top of its own environment."""
    log: str | None = None


@dataclass
class PlatformState:
    gateway_url: str
    services: dict[str, ProcessInfo]
    run_dir: str
    managed: bool = False
    """Started by the runner: its processes may be killed and its proxies switched."""
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str | None = None
    rabbitmq_url: str | None = None
    rabbitmq_vhost: str | None = None
    proxy_control_url: str | None = None
    proxy_pid: int | None = None
    proxy_ports: dict[str, int] = field(default_factory=dict)
    chaos_token: str | None = None
    cwd: str | None = None
    prometheus_url: str | None = None
    """The run's own Prometheus (``chaos.prometheus``): its address and process, and the rule files it loaded."""
    prometheus_pid: int | None = None
    rule_files: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformState:
        fields = dict(data)
        fields["services"] = {name: ProcessInfo(**info) for name, info in data["services"].items()}
        return cls(**fields)

    def service(self, name: str) -> ProcessInfo:
        try:
            return self.services[name]
        except KeyError:
            raise ValueError(f"no process called {name}; known: {', '.join(self.services)}") from None


def state_path(configuration: Mapping[str, Any] | None = None) -> Path:
    path = (configuration or {}).get("cerebrum_state") or os.environ.get(STATE_ENV)
    if not path:
        raise RuntimeError(f"no platform under test: set {STATE_ENV} (the chaos runner does)")
    return Path(path)


def load(configuration: Mapping[str, Any] | None = None) -> PlatformState:
    return load_file(state_path(configuration))


def load_file(path: Path) -> PlatformState:
    return PlatformState.from_json(json.loads(path.read_text()))


def save(state: PlatformState, path: Path) -> None:
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        os.chmod(tmp, 0o600)  # it names private databases and the chaos token
        tmp.replace(path)


def update(configuration: Mapping[str, Any] | None, change: Any) -> PlatformState:
    """Loads, changes (``change(state)``) and saves the platform file."""
    path = state_path(configuration)
    state = PlatformState.from_json(json.loads(path.read_text()))
    change(state)
    save(state, path)
    return state


# The run of one experiment ---------------------------------------------------------------------
def experiment_name() -> str:
    return os.environ.get(EXPERIMENT_ENV) or "adhoc"


def experiment_dir(configuration: Mapping[str, Any] | None = None, name: str | None = None) -> Path:
    folder = Path(load(configuration).run_dir) / (name or experiment_name())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def append(folder: Path, file: str, record: Mapping[str, Any]) -> None:
    with _lock, open(folder / file, "a") as out:
        out.write(json.dumps(record, default=str) + "\n")


def records(folder: Path, file: str) -> Iterator[dict[str, Any]]:
    path = folder / file
    if not path.exists():
        return
    with _lock:
        lines = path.read_text().splitlines()
    for line in lines:
        if line.strip():
            yield json.loads(line)


def mark(event: str, configuration: Mapping[str, Any] | None = None, **detail: Any) -> float:
    """Notes a moment of the experiment (fault_started, detected, fault_ended, recovered)."""
    at = time.time()
    append(experiment_dir(configuration), "timeline.jsonl", {"event": event, "at": at, **detail})
    return at


def timeline(folder: Path) -> list[dict[str, Any]]:
    return list(records(folder, "timeline.jsonl"))
