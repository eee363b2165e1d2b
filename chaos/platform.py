"""A private distributed platform for chaos runs: every service its own process, on free ports.

Like ``cerebrum up --distributed`` (and ``tests/journeys/test_distributed.py``): its own database
and Redis key prefix on the shared servers, its own RabbitMQ node (``chaos.broker``; or a vhost on
the shared RabbitMQ with ``private_broker=False``), migrated and seeded before any service
starts. Unlike it, every service reaches PostgreSQL, Redis and RabbitMQ through a listener of the
chaos proxy (``<service>.<dependency>``), so one service can be cut off without touching anyone
else, and the runner keeps each process's id and command so that actions can kill and restart it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import asyncpg
import redis

from chaos.broker import PrivateBroker
from chaos.processes import alive, free_port, reachable, spawn, terminate, terminate_all, wait_ready
from chaos.state import PlatformState, ProcessInfo, save
from chaos.state import load_file as load_state_file

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DATABASE_URL = os.environ.get("CHAOS_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
DEPENDENCIES = {
    "postgres": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": (RABBITMQ_HOST, RABBITMQ_PORT),
}
SERVICE_NAMES = ("users", "courses", "enrollments", "payments", "communication", "assessments")
# Quicker than production so that a run fits in minutes; every value is an ordinary setting.
TUNING = {
    "ENVIRONMENT": "test",
    "PASSWORD_TIME_COST": "1",
    "PASSWORD_MEMORY_KIB": "1024",
    "REGISTER_LIMIT_PER_CLIENT": "100000/minute",
    "LOGIN_LIMIT_PER_CLIENT": "100000/minute",
    "LOGIN_LIMIT_PER_ACCOUNT": "1000/minute",
    "RATE_LIMITS": "100000/minute",
    "TRUSTED_PROXIES": '["127.0.0.1"]',
    "BREAKER_THRESHOLD": "5",
    "BREAKER_TTL_SECONDS": "4",
    "CALL_TIMEOUT_SECONDS": "2",
    "SAGA_RECOVERY_INTERVAL_SECONDS": "2",
    "SAGA_STUCK_AFTER_SECONDS": "8",
    "WEIGHTS_REFRESH_SECONDS": "5",
    "DATABASE_POOL_SIZE": "5",
    "LOG_LEVEL": "WARNING",
}


def _sql(url: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Platform:
    """Starts, describes and tears down one private distributed platform."""

    def __init__(
        self, out_dir: Path, *, say: Callable[[str], None] = lambda _message: None, private_broker: bool = True
    ) -> None:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.run_dir = out_dir / "runs" / run_id
        self.state_file = self.run_dir / "platform.json"
        self.say = say
        self.database = f"chaos_{uuid.uuid4().hex[:12]}"
        self.vhost = f"chaos-{uuid.uuid4().hex[:10]}"
        self.redis_prefix = f"chaos:{uuid.uuid4().hex[:8]}:"
        self.token = secrets.token_urlsafe(24)
        self.state: PlatformState | None = None
        self._created: list[str] = []
        self.broker = PrivateBroker() if private_broker else None
        self.dependencies = dict(DEPENDENCIES)

    def _rabbitmqctl(self, *args: str) -> None:
        if self.broker is not None:
            self.broker.ctl(*args)
        else:
            _rabbitmqctl(*args)

    @property
    def database_url(self) -> str:
        return ADMIN_DATABASE_URL.rsplit("/", 1)[0] + f"/{self.database}"

    def _url(self, dependency: str, port: int) -> str:
        if dependency == "postgres":
            return f"postgresql://postgres@127.0.0.1:{port}/{self.database}"
        if dependency == "redis":
            return f"redis://127.0.0.1:{port}/0"
        return f"amqp://guest:guest@127.0.0.1:{port}/{self.vhost}"

    def _direct_env(self) -> dict[str, str]:
        return {
            **TUNING,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "RABBITMQ_URL": self._url("rabbitmq", self.dependencies["rabbitmq"][1]),
            "DATA_DIR": str(self.run_dir / "data"),
            "OBSERVABILITY": "on",
            "OTEL_TRACES_EXPORTER": "none",
        }

    def start(self, *, timeout: float = 180.0) -> PlatformState:
        """Creates the private spaces, migrates and seeds, starts the proxy and every process."""
        for name, (host, port) in DEPENDENCIES.items():
            if not reachable(host, port) and not (name == "rabbitmq" and self.broker is not None):
                raise RuntimeError(f"{name} is not answering on {host}:{port}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        if self.broker is not None:
            self.say("starting a RabbitMQ node of this run's own")
            self.broker.start()
            self.broker.export()
            self.dependencies["rabbitmq"] = (RABBITMQ_HOST, self.broker.port)
            self.say(f"RabbitMQ node {self.broker.node} on port {self.broker.port} (log {self.broker.log_file})")
        self.say(f"database {self.database}, vhost {self.vhost}, redis prefix {self.redis_prefix}")
        _sql(ADMIN_DATABASE_URL, f'CREATE DATABASE "{self.database}"')
        self._created.append("database")
        self._rabbitmqctl("add_vhost", self.vhost)
        self._created.append("vhost")
        self._rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        direct = self._direct_env()
        self.say("migrating and seeding the catalogue")
        self._prepare(direct)
        names = [*SERVICE_NAMES, "gateway"]
        proxy_ports, control_url, proxy_pid = self._start_proxy(names)
        ports = {name: free_port() for name in names}
        upstreams = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICE_NAMES}
        shared = {
            **direct,
            "CHAOS_ENABLED": "true",
            "CHAOS_TOKEN": self.token,
            "UPSTREAMS": json.dumps(upstreams),
            **{f"{name.upper()}_URL": url for name, url in upstreams.items()},
        }
        services: dict[str, ProcessInfo] = {}
        for name in names:
            env = {
                **shared,
                "DATABASE_URL": self._url("postgres", proxy_ports[f"{name}.postgres"]),
                "REDIS_URL": self._url("redis", proxy_ports[f"{name}.redis"]),
                "RABBITMQ_URL": self._url("rabbitmq", proxy_ports[f"{name}.rabbitmq"]),
            }
            services[name] = ProcessInfo(
                name=name,
                url=f"http://127.0.0.1:{ports[name]}",
                port=ports[name],
                # `cerebrum serve` installs the faults itself (CHAOS_ENABLED in the environment).
                argv=[sys.executable, "-m", "cerebrum.cli", "serve", name, "--port", str(ports[name]), "--no-migrate"],
                env=env,
                log=str(self.run_dir / "logs" / f"{name}.log"),
            )
        self.state = PlatformState(
            gateway_url=services["gateway"].url,
            services=services,
            run_dir=str(self.run_dir),
            managed=True,
            database_url=self.database_url,
            redis_url=REDIS_URL,
            redis_prefix=self.redis_prefix,
            rabbitmq_url=direct["RABBITMQ_URL"],
            rabbitmq_vhost=self.vhost,
            proxy_control_url=control_url,
            proxy_pid=proxy_pid,
            proxy_ports=proxy_ports,
            chaos_token=self.token,
            cwd=str(ROOT),
        )
        self.say("starting " + ", ".join(names))
        for info in services.values():
            info.pid = spawn(info, cwd=str(ROOT))
        save(self.state, self.state_file)
        deadline = time.monotonic() + timeout
        for info in services.values():
            if not wait_ready(info.url, timeout=max(1.0, deadline - time.monotonic()), pid=info.pid):
                raise RuntimeError(f"{info.name} did not become ready; see {info.log}")
        self.say(f"platform ready at {self.state.gateway_url}")
        return self.state

    def _prepare(self, env: dict[str, str]) -> None:
        """``cerebrum db upgrade`` (queues too) and ``cerebrum seed catalogue``, in one process (imports are slow).

        A child process, not an import: ``cerebrum`` composes chaos into its CLI, so chaos never imports it.
        """
        script = (
            "import asyncio\n"
            "from rich.console import Console\n"
            "from cerebrum import runner\n"
            "from cerebrum.distributed import declare_queues\n"
            "console = Console(stderr=True)\n"
            "asyncio.run(runner.migrate(None, console=console))\n"
            "asyncio.run(runner.load_catalogue(console=console))\n"
            "declare_queues()\n"
        )
        full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
        full.update(env)
        done = subprocess.run([sys.executable, "-c", script], env=full, cwd=ROOT, capture_output=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"migrating and seeding failed: {done.stderr.decode()[-2000:]}")
        # Room for every student the experiments bring: a full course would turn their enrolments
        # into (correct) 409s and hide what the experiments look for.
        _sql(self.database_url, "UPDATE courses.courses SET capacity = 100000")

    def _start_proxy(self, names: list[str]) -> tuple[dict[str, int], str, int]:
        ready = self.run_dir / "proxy.json"
        argv = [sys.executable, "-m", "chaos.proxy", "--ready-file", str(ready)]
        for name in names:
            for dependency, (host, port) in self.dependencies.items():
                argv += ["--route", f"{name}.{dependency}=0:{host}:{port}"]
        info = ProcessInfo(name="proxy", url="", port=0, argv=argv, log=str(self.run_dir / "logs" / "proxy.log"))
        pid = spawn(info, cwd=str(ROOT))
        self._proxy_pid = pid
        deadline = time.monotonic() + 60
        while not ready.exists():
            if not alive(pid) or time.monotonic() > deadline:
                raise RuntimeError(f"the chaos proxy did not start; see {info.log}")
            time.sleep(0.1)
        described = json.loads(ready.read_text())
        return {k: int(v) for k, v in described["ports"].items()}, str(described["control_url"]), pid

    def stop(self) -> None:
        """Stops every process and removes the database, vhost and Redis keys; never raises."""
        state = self.state
        if state is not None and self.state_file.exists():
            # Restarted processes have new ids, written to the file by the action that started them.
            _quietly(lambda: setattr(self, "state", load_state_file(self.state_file)))
            state = self.state
        if state is not None:
            _quietly(partial(terminate_all, [info.pid for info in state.services.values()]))
        _quietly(lambda: terminate(getattr(self, "_proxy_pid", None), grace=5))
        if "database" in self._created:
            _quietly(lambda: _sql(ADMIN_DATABASE_URL, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        if self.broker is not None:
            _quietly(self.broker.stop)  # the vhost goes with the node
        elif "vhost" in self._created:
            _quietly(lambda: _rabbitmqctl("delete_vhost", self.vhost))
        _quietly(self._forget_redis_keys)
        # The data folder holds the run's signing key; logs and journals stay for reading.
        _quietly(partial(shutil.rmtree, self.run_dir / "data", ignore_errors=True))

    def _forget_redis_keys(self) -> None:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        try:
            for pattern in (self.redis_prefix + "*", "LIMITS:" + self.redis_prefix + "*"):
                keys = list(client.scan_iter(match=pattern, count=500))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception:  # teardown goes on whatever one step does
        pass
