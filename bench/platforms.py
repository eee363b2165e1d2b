"""The two platforms the gateway, ceiling, capacity and memory figures load.

Distributed: what ``cerebrum up --distributed`` runs (``cerebrum serve NAME`` per service and the
gateway), on the ports of a free base port, with its own database, RabbitMQ vhost and Redis key prefix, migrated
and seeded (catalogue, demo questions) before any service starts, and dropped afterwards.
Embedded: ``cerebrum up`` (SQLite, the in-process Redis stand-in and event bus) in a scratch folder.
Processes start on both cores and are pinned to the server core once ready (every thread).
Both run with full instrumentation, traces sampled at 10% and exported to the OTLP sink.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import seed
from bench.harness import (
    OUT,
    PG_URL,
    REDIS_URL,
    SERVER_CPU,
    Running,
    free_port,
    pin,
    rabbitmqctl,
    sql,
    start,
    stop,
    wait_ready,
)

RABBITMQ = os.environ.get("BENCH_RABBITMQ", "guest:guest@127.0.0.1:5672")
SERVICES = ("users", "courses", "enrollments", "payments", "analytics", "communication", "assessments")
# As `cerebrum load run` starts the platform for a load: limits meant for one person would stop a
# load at its first minute, and a student arriving should not measure argon2 (the login row of
# the observability tax does, at production strength).
TUNING = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "INFO",
    "OBSERVABILITY": "on",
    "REGISTER_LIMIT_PER_CLIENT": "100000/minute",
    "LOGIN_LIMIT_PER_CLIENT": "100000/minute",
    "RATE_LIMITS": "1000000/minute;10000000/hour",
    "PASSWORD_TIME_COST": "1",
    "PASSWORD_MEMORY_KIB": "1024",
    "ACCESS_TOKEN_TTL_SECONDS": "3600",
    "TRUSTED_PROXIES": '["127.0.0.1"]',
}
PASSWORD = "Mitochondria-Bench-7"


def telemetry(sink_port: int) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }


@dataclass
class Student:
    """A student made through the gateway: their token, id, and the course they enrolled in."""

    user_id: str
    token: str
    course_id: str
    seeded: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Distributed:
    gateway: Running
    services: dict[str, Running]
    student: Student
    env: dict[str, str]

    @property
    def processes(self) -> dict[str, Running]:
        return {**self.services, "gateway": self.gateway}

    def hot_reads(self) -> dict[str, str]:
        """Each service's hottest read for this student, as a path on the service itself."""
        s = self.student
        return {
            "courses": f"/courses/{s.course_id}",
            "users": "/users/profile",
            "enrollments": f"/enrollments/student/{s.user_id}",
            "assessments": "/leaderboard/genetics",
            "payments": f"/payments/history/{s.user_id}",
            "analytics": f"/analytics/dashboard/{s.user_id}",
            "communication": f"/notifications/{s.user_id}",
        }


def _prepare(env: dict[str, str]) -> None:
    """``cerebrum db upgrade`` (every schema, every consumer's queues) and ``cerebrum seed catalogue``."""
    from cerebrum.registry import SERVICES as SPECS
    from services.kit.events.rabbitmq import RabbitBus

    for name in (*SERVICES, "gateway"):
        seed.prepare(name, env, catalogue=name == "courses")
    bus = RabbitBus(env["RABBITMQ_URL"])
    for spec in SPECS.values():
        if spec.consumes:
            bus.declare(spec.name, spec.consumes)
    asyncio.run(_demo_questions(env))


async def _demo_questions(env: dict[str, str]) -> None:
    from services.assessments.bank import seed_demo_questions

    kit = seed.kit_for("assessments", env)
    try:
        async with kit.db.session_scope() as db:
            await seed_demo_questions(db=db)
    finally:
        await kit.close()


def make_student(gateway: str) -> Student:
    """Registers and logs a student in through the gateway, enrols them in a course and pays for it."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    seeded: dict[str, Any] = {}
    with httpx.Client(base_url=gateway + "/api", timeout=30) as client:
        profile = {"email": email, "password": PASSWORD, "full_name": "Bench Student", "grade": "12"}
        client.post("/auth/register", json={**profile, "target_exam": "NEET"}).raise_for_status()
        tokens = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        user_id = client.get("/users/profile").json()["id"]
        courses = client.get("/courses").json()["items"]
        paid = [c for c in courses if c.get("price", 0)] or courses
        course_id = str(paid[0]["id"])
        enrolled = client.post("/enrollments", json={"course_id": course_id})
        seeded["enrollment_status"] = enrolled.status_code
        order = (enrolled.json().get("order") or {}) if enrolled.status_code < 300 else {}
        order_id = order.get("id") or order.get("order_id")
        if order_id:
            checkout = client.post("/payments/sandbox/checkout", json={"order_id": order_id, "outcome": "success"})
            seeded["checkout_status"] = checkout.status_code
            if checkout.status_code == 200:
                fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")
                verified = client.post("/payments/verify", json={k: checkout.json()[k] for k in fields})
                seeded["verify_status"] = verified.status_code
        for topic in ("genetics", "ecology"):
            attempt = str(uuid.uuid4())
            paper = client.get("/questions/random", params={"topic": topic, "count": 5, "attempt_id": attempt})
            questions = paper.json().get("questions", []) if paper.status_code == 200 else []
            answers = [
                {"question_id": q["id"], "choice": 0} if q.get("options") else {"question_id": q["id"], "text": "Genes"}
                for q in questions
            ]
            if answers:
                body = {"attempt_id": attempt, "topic": topic, "answers": answers, "duration_seconds": 120}
                seeded[f"submit_{topic}"] = client.post("/assessments/submit", json=body).status_code
    return Student(user_id=str(user_id), token=tokens["access_token"], course_id=course_id, seeded=seeded)


def _serve_argv(source: Path | None, without: tuple[str, ...]) -> list[str]:
    """``python -m cerebrum.cli`` from this tree, or from ``source`` (another revision's checkout) with the
    named modules made unimportable (e.g. ``hiredis``: a revision before it relied on it)."""
    if source is None and not without:
        return [sys.executable, "-m", "cerebrum.cli"]
    boot = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({list(without)!r})); sys.argv[0] = 'cerebrum'; "
        "runpy.run_module('cerebrum.cli', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", boot]


@contextmanager
def distributed(
    sink_port: int,
    *,
    source: Path | None = None,
    without: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Distributed]:
    """Starts the distributed platform on its own database, vhost and key prefix; drops them afterwards.

    ``source``: the services run from that checkout (another revision) instead of this one.
    """
    tag = uuid.uuid4().hex[:10]
    database, vhost, prefix = f"bench_dist_{tag}", f"bench-dist-{tag}", f"bench:{tag}:"
    data_dir = (OUT / f"distributed-{tag}").resolve()
    env = {
        **TUNING,
        **telemetry(sink_port),
        "DATABASE_URL": PG_URL.rsplit("/", 1)[0] + f"/{database}",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "RABBITMQ_URL": f"amqp://{RABBITMQ}/{vhost}",
        "DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    if source is not None:
        env["PYTHONPATH"] = str(source)
    asyncio.run(sql(f'CREATE DATABASE "{database}"'))
    started: list[Running] = []
    try:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        print("bench: distributed platform — migrating, seeding the catalogue and questions…", flush=True)
        _prepare(env)
        # The layout of `cerebrum up --distributed --base-port`, on a base no other run holds.
        from cerebrum.ports import Ports, free_base_port

        layout = Ports.layout(free_base_port())
        ports = {**{name: layout.service(name) for name in SERVICES}, "gateway": layout.gateway}
        upstreams = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
        env |= {"UPSTREAMS": json.dumps(upstreams), **{f"{n.upper()}_URL": u for n, u in upstreams.items()}}
        print("bench: distributed platform — starting seven services and the gateway…", flush=True)
        for name, port in ports.items():
            argv = [*_serve_argv(source, without), "serve", name, "--port", str(port), "--no-migrate"]
            started.append(start(f"distributed-{name}", argv, env, port, cpu=None, cwd=source))
        for running in started:
            wait_ready(running.url, "/ready", running.process, timeout=600, name=running.name)
            pin(running.pid, SERVER_CPU)
        by_name = {r.name.removeprefix("distributed-"): r for r in started}
        gateway = by_name.pop("gateway")
        student = make_student(gateway.url)
        yield Distributed(gateway=gateway, services=by_name, student=student, env=env)
    finally:
        for running in started:
            stop(running)
        try:
            rabbitmqctl("delete_vhost", vhost)
        except subprocess.CalledProcessError:
            pass  # never made
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        _clear_redis(prefix)
        shutil.rmtree(data_dir, ignore_errors=True)


def _clear_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@contextmanager
def embedded(sink_port: int) -> Iterator[Running]:
    """Runs ``cerebrum up`` (every service in one process, on SQLite) in a scratch folder."""
    data_dir = (OUT / f"embedded-{uuid.uuid4().hex[:8]}").resolve()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "RABBITMQ_"))}
    env |= {**TUNING, **telemetry(sink_port), "DATA_DIR": str(data_dir)}
    argv = [sys.executable, "-m", "cerebrum.cli", "up", "--port", str(port), "--data-dir", str(data_dir)]
    print("bench: embedded platform — starting `cerebrum up`…", flush=True)
    running = start("embedded", argv, env, port, cpu=None, whole_env=True)
    try:
        wait_ready(running.url, "/health", running.process, timeout=180, name="embedded")
        pin(running.pid, SERVER_CPU)
        yield running
    finally:
        stop(running)
        shutil.rmtree(data_dir, ignore_errors=True)
