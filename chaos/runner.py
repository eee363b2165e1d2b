"""Runs chaos experiments against a private distributed platform (or a given one) and writes journals.

For each experiment: Chaos Toolkit runs it (its Python API, or the ``chaos run`` command with
``engine="cli"``) with rollbacks always played; the runner then adds a ``cerebrum`` section
(time to detect, time to recover, verdict) and writes ``chaos/out/<name>.json``. After every
experiment, and in a ``finally`` whatever happens, it clears injected faults, lets every proxy
pass, stops leftover load and starts every real server an experiment stopped.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from chaos import actions, control, servers
from chaos.alerts import Expectations, Rules
from chaos.journal import fault_time, summarise
from chaos.platform import ROOT, Platform
from chaos.prometheus import RULE_FILES, AlertWatcher, RunPrometheus
from chaos.report import say_outcome, table
from chaos.state import EXPERIMENT_ENV, STATE_ENV, PlatformState, ProcessInfo, experiment_dir, load, save
from chaos.verdicts import Alerting, late_pages

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"
OUT_DIR = Path(__file__).parent / "out"
MANAGED_ONLY = "needs-managed-platform"
BUSY_ATTEMPTS = 2
Engine = Literal["python", "cli"]


def discover(directory: Path = EXPERIMENTS_DIR) -> dict[str, Path]:
    """Every experiment by name, in order: ``3-postgres-cut.json`` is ``postgres-cut``, third."""

    def order(path: Path) -> tuple[int, str]:
        number, _, rest = path.stem.partition("-")
        return (int(number), rest) if number.isdigit() else (10**6, path.stem)

    found = sorted(directory.glob("*.json"), key=order)
    return {(order(path)[1] if order(path)[0] < 10**6 else path.stem): path for path in found}


@dataclass
class Outcome:
    name: str
    journal_path: Path | None
    cerebrum: dict[str, Any] = field(default_factory=dict)
    status: str = "not run"

    @property
    def passed(self) -> bool:
        return self.cerebrum.get("verdict") == "passed"


class _ConsoleHandler(logging.Handler):
    """Shows Chaos Toolkit's own progress lines (each activity as it starts) on the console."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.console.print(f"    [yellow]{message[:300]}[/]")
        elif message.startswith(("Action:", "Probe:", "Rollback:", "Steady state", "Playing your", "Experiment ended")):
            self.console.print(f"    [dim]{message[:200]}[/]")


@contextmanager
def _chaostoolkit_logs(console: Console, log_file: Path) -> Iterator[None]:
    logger = logging.getLogger("chaostoolkit")
    handlers: list[logging.Handler] = [_ConsoleHandler(console), logging.FileHandler(log_file)]
    handlers[1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous)


def external_state(url: str, run_dir: Path, database_url: str | None) -> PlatformState:
    """A platform someone else runs: the gateway at ``url`` and the services on their usual ports."""
    from services.gateway.settings import DEFAULT_UPSTREAMS

    services = {
        name: ProcessInfo(name=name, url=address, port=int(address.rsplit(":", 1)[1]))
        for name, address in DEFAULT_UPSTREAMS.items()
        if name != "analytics"
    }
    services["gateway"] = ProcessInfo(name="gateway", url=url.rstrip("/"), port=0)
    return PlatformState(
        gateway_url=url.rstrip("/"),
        services=services,
        run_dir=str(run_dir),
        managed=False,
        database_url=database_url,
        chaos_token=os.environ.get("CHAOS_TOKEN"),
    )


def tidy_up(state: PlatformState | None, console: Console) -> None:
    """Puts right whatever an experiment may have left broken; never raises."""
    for step in (actions.stop_load, actions.stop_traffic, actions.stop_metrics_recording):
        try:
            step()
        except Exception as exc:
            console.print(f"[red]tidy-up: {step.__name__} failed: {exc}[/]")
    for name in servers.restore(say=lambda m: console.print(f"[yellow]{m}[/]")):
        console.print(f"[yellow]restarted {name}, which an experiment had left stopped[/]")
    if state is None:
        return
    try:
        if state.proxy_control_url:
            left = control.proxies_not_passing(state)
            if left:
                for dependency in ("postgres", "redis", "rabbitmq"):
                    control.switch_proxies(state, dependency, "*", "pass")
                console.print(f"[yellow]proxies left cutting traffic, now passing: {', '.join(left)}[/]")
        if state.chaos_token:
            control.clear_faults(state)
        if state.managed:
            for info in state.services.values():
                if not control.readiness(info.url)["ready"] and info.pid is not None:
                    control.restart(state, info.name, timeout=90)
    except Exception as exc:
        console.print(f"[red]tidy-up failed: {exc}[/]")


class _Interrupts:
    """SIGINT and SIGTERM end the run after the current experiment's rollbacks (not mid-way).

    Chaos Toolkit turns the KeyboardInterrupt into an interrupted journal and still plays the
    rollbacks; the runner then stops, tidies up, restores servers and removes the platform.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.seen:
            return  # the first one is being dealt with
        self.seen = True
        raise KeyboardInterrupt

    def release(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _run_one(path: Path, name: str, *, engine: Engine, out_dir: Path, console: Console) -> dict[str, Any]:
    experiment = json.loads(path.read_text())
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    journal_path = out_dir / f"{name}.json"
    log_file = experiment_dir(name=name) / "chaostoolkit.log"
    if engine == "cli":
        argv = [
            str(Path(sys.executable).with_name("chaos")),
            "--no-version-check", "--log-file", str(log_file),
            "run", "--journal-path", str(journal_path), "--rollback-strategy", "always", str(path),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        subprocess.run(argv, env=env, cwd=ROOT, timeout=1800)
        journal: dict[str, Any] = json.loads(journal_path.read_text())
        return journal
    from chaoslib.experiment import run_experiment

    with _chaostoolkit_logs(console, log_file):
        journal = run_experiment(experiment, settings=settings)
    return journal


def _attempt(
    path: Path, name: str, *, engine: Engine, out_dir: Path, state_file: Path, console: Console, alerting: Alerting
) -> Outcome:
    os.environ[EXPERIMENT_ENV] = name
    expectations = Expectations.of(json.loads(path.read_text()))
    waited = alerting.wait_until_clear(name, expectations, console)
    started = time.time()
    alerting.expect(name, json.loads(path.read_text()), started)
    try:
        journal = _run_one(path, name, engine=engine, out_dir=out_dir, console=console)
    finally:
        tidy_up(load(), console)
    finished = time.time()
    folder = experiment_dir(name=name)
    alerts = alerting.verdict(name, expectations, started_at=started, fault_at=fault_time(folder))
    journal["cerebrum"] = {
        "experiment": name,
        "platform_file": str(state_file),
        "engine": engine,
        "waited_for_alerts_to_clear_seconds": waited,
        **summarise(journal, folder, started_at=started, finished_at=finished, alerts=alerts),
    }
    journal_path = out_dir / f"{name}.json"
    journal_path.write_text(json.dumps(journal, indent=2, default=str))
    return Outcome(name, journal_path, journal["cerebrum"], str(journal.get("status")))


def _server_was_busy(outcome: Outcome) -> bool:
    return any("ServerBusy" in failure["error"] for failure in outcome.cerebrum.get("method_failures", []))


def run(
    names: list[str],
    *,
    url: str | None = None,
    database_url: str | None = None,
    out_dir: Path = OUT_DIR,
    engine: Engine = "python",
    console: Console | None = None,
    private_broker: bool = True,
    rule_files: list[Path] | None = None,
    await_alerts: set[str] | None = None,
) -> list[Outcome]:
    """Runs the named experiments; returns each one's outcome (journals written to ``out_dir``).

    The platform the runner starts gets a RabbitMQ node of its own unless ``private_broker`` is
    false: then the rabbitmq-down experiment stops the machine's shared RabbitMQ, once no other
    engineer's tests run. A Prometheus of the run's own scrapes it with ``rule_files`` (the
    repository's alert and SLO rules by default). Every experiment is judged on the unrelated alerts
    it sets off; those in ``await_alerts`` (all by default) also hold their fault until the alerts
    they name fire, or their deadlines pass.
    """
    console = console or Console(stderr=True)
    known = discover()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no experiment called {', '.join(unknown)}; known: {', '.join(known)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ[servers.LEDGER_ENV] = str(out_dir / "stopped-servers.json")
    servers.restore(say=lambda m: console.print(f"[yellow]{m} (left stopped by an earlier run)[/]"))
    platform = None
    prometheus: RunPrometheus | None = None
    watcher: AlertWatcher | None = None
    state: PlatformState | None = None
    outcomes: list[Outcome] = []
    interrupted = _Interrupts()
    try:
        if url is None:
            platform = Platform(
                out_dir, say=lambda m: console.print(f"[cyan]platform:[/] {m}"), private_broker=private_broker
            )
            state = platform.start()
            state_file = platform.state_file
        else:
            run_dir = out_dir / "runs" / time.strftime("%Y%m%d-%H%M%S")
            state = external_state(url, run_dir, database_url)
            state_file = run_dir / "platform.json"
        prometheus = RunPrometheus(Path(state.run_dir) / "prometheus", rule_files=rule_files or list(RULE_FILES))
        prometheus.start({name: info.url for name, info in state.services.items()})
        console.print(f"[cyan]prometheus:[/] {prometheus.url}, rules {', '.join(map(str, prometheus.rule_files))}")
        state.prometheus_url, state.prometheus_pid = prometheus.url, prometheus.pid
        state.rule_files = [str(p) for p in prometheus.rule_files]
        save(state, state_file)
        os.environ[STATE_ENV] = str(state_file)
        watcher = AlertWatcher(prometheus.url, Path(state.run_dir))
        watcher.start()
        alerting = Alerting(watcher, Rules.load(prometheus.rule_files), await_alerts)
        queue = [(name, 1) for name in names]
        while queue:
            name, attempt = queue.pop(0)
            if interrupted.seen:
                console.print(f"[yellow]interrupted: {name} and the rest are not run[/]")
                break
            experiment = json.loads(known[name].read_text())
            if MANAGED_ONLY in experiment.get("tags", []) and not state.managed:
                console.print(f"[yellow]skipped[/] {name}: it needs a platform the runner starts (no --url)")
                outcomes.append(Outcome(name, None, status="skipped"))
                continue
            console.rule(f"[bold]{names.index(name) + 1}/{len(names)} {name}[/]: {experiment.get('title', name)}")
            outcome = _attempt(
                known[name],
                name,
                engine=engine,
                out_dir=out_dir,
                state_file=state_file,
                console=console,
                alerting=alerting,
            )
            if _server_was_busy(outcome) and attempt < BUSY_ATTEMPTS and not interrupted.seen:
                # Other engineers' tests kept a shared server in use: nothing was broken; try again last.
                console.print(f"[yellow]{name}: a shared server was busy; trying again after the others[/]")
                experiment_dir(name=name).rename(experiment_dir(name=name).with_name(f"{name}.busy-{attempt}"))
                queue.append((name, attempt + 1))
                continue
            outcomes.append(outcome)
            say_outcome(console, outcome)
        late_pages(outcomes, alerting, known)
    finally:
        try:
            tidy_up(state, console)
        finally:
            servers.restore(say=lambda m: console.print(f"[yellow]{m}[/]"))
            if watcher is not None:
                watcher.stop()
            if prometheus is not None:
                console.print("[cyan]prometheus:[/] stopping")
                prometheus.stop()
            if platform is not None:
                console.print("[cyan]platform:[/] stopping")
                platform.stop()
            os.environ.pop(EXPERIMENT_ENV, None)
            interrupted.release()
    summary = out_dir / "summary.json"
    summary.write_text(
        json.dumps([{"name": o.name, "status": o.status, **o.cerebrum} for o in outcomes], indent=2, default=str)
    )
    console.print(table(outcomes))
    return outcomes
