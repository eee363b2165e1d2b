"""Schemathesis against every service's OpenAPI, in-process, as a student and as an admin.

Three properties, for valid and invalid requests alike: no 5xx; every 4xx is problem+json; and a
refused request writes nothing (every table of every service's database is compared before and
after it, apart from the audit logs whose job is to record refusals).

Bounded and repeatable: a fixed number of examples per operation, a time budget for the whole
run, and derandomised generation (the same cases every run).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.python import asgi

from cerebrum.runner import build_platform
from services.enrollments.transitions import TERMINAL_STATES
from services.kit.auth import TokenIssuer
from services.users.settings import UsersSettings
from tests.security.embedded import SERVICE_PACKAGES, add_missing_services, bearer, security_overrides

# Hypothesis keeps caches (constants, Unicode tables) under .hypothesis/; not in the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cerebrum-security-hypothesis")
# Schemathesis draws some values with the random module; Hypothesis (which seeds it per example, so
# derandomised runs stay repeatable) warns about that on every operation.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
EXAMPLES_PER_OPERATION = 15
BUDGET_SECONDS = 60.0
TARGETS = [*SERVICE_PACKAGES, "gateway"]
# Tables whose job is to record refusals: a refused login or a forged webhook must leave a row, and
# the enrolment saga logs every attempt before its first step (so that a crash resumes it); a refused
# attempt ends compensated, holding nothing (test_refused_enrolment_holds_nothing).
AUDIT_TABLES = {
    ("users", "auth_logs"),
    ("payments", "payment_audit_log"),
    ("enrollments", "enrollment_sagas"),
    ("enrollments", "saga_steps"),
}
# Background work that would write while the fuzzer compares tables: pushed out of the run.
QUIET = {
    "aggregator_interval_seconds": 3600,
    "dispatcher_interval_seconds": 3600,
    "saga_recovery_interval_seconds": 3600,
    "order_expiry_interval_seconds": 3600,
    "maintenance_interval_seconds": 3600,
    "live_interval_seconds": 0.02,  # the live view's stream is read until 20 events: keep that short
}
MAX_REPORTED_PER_OPERATION = 3


class Tables:
    """Every table of every service's SQLite file, read straight from disk."""

    def __init__(self, data_dir: Path) -> None:
        self.connections = {
            path.stem: sqlite3.connect(path, isolation_level=None, timeout=10) for path in sorted(data_dir.glob("*.db"))
        }

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()

    def snapshot(self) -> dict[tuple[str, str], str]:
        """A digest of each table's rows, in a stable order."""
        digests = {}
        for service, db in self.connections.items():
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in names:
                if table.startswith("sqlite_") or (service, table) in AUDIT_TABLES:
                    continue
                rows = sorted(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
                digests[(service, table)] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return digests

    def unpublished(self) -> int:
        """Events not yet relayed, then messages the communication dispatcher has yet to send.

        The dispatcher works after the event that queued a message was handled: a welcome email
        for one request's registration can be sent (and its status written) during the next one.
        Every outbox is read before any queue: a relay marks an event sent only after its consumers
        committed, so a message queued for an event that reads as sent is already in its queue.
        Messages due within the next second count too (SQLite's clock reads in milliseconds).
        """
        outboxes = queues = 0
        for db in self.connections.values():
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbox'").fetchone():
                outboxes += db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
        for db in self.connections.values():
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='communication_logs'").fetchone():
                queues += db.execute(
                    "SELECT count(*) FROM communication_logs WHERE status = 'queued' "
                    "AND next_attempt_at <= strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 second')"
                ).fetchone()[0]
        return outboxes + queues

    def quiesce(self, timeout: float = 5.0) -> None:
        """Waits until no table changes for a moment (start-up work of a freshly started platform)."""
        deadline = time.monotonic() + timeout
        last = self.snapshot()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            self.settle()
            now = self.snapshot()
            if now == last:
                return
            last = now

    def settle(self, timeout: float = 30.0) -> None:
        """Waits until every recorded event has been relayed and handled (consumers write too).

        Two clean readings in a row: the first may have read a database just before the work of
        an event relayed from another landed in it.
        """
        deadline = time.monotonic() + timeout
        clean = 0
        while clean < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"background work still pending after {timeout:.0f} s: {self.unpublished()}")
            clean = clean + 1 if self.unpublished() == 0 else 0
            if clean < 2:
                time.sleep(0.005)


@dataclass
class Target:
    platform: Any
    """The embedded ``Platform``, an ASGI app (typed loosely for schemathesis's narrower ASGI alias)."""
    data_dir: Path
    callers: dict[str, dict[str, str]]
    tables: Tables
    started: float = field(default_factory=time.monotonic)


@pytest.fixture(scope="module")
def target(_embedded_only: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The platform served to schemathesis (which runs its lifespan), a student, an admin and some data."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    overrides = security_overrides(data_dir, **QUIET)
    platform: Any = build_platform(overrides=overrides)
    add_missing_services(platform, overrides)
    issuer = TokenIssuer(UsersSettings(data_dir=data_dir))
    admin = bearer(issuer.issue(user_id=uuid.uuid4(), role="admin", session_id=None))
    try:
        with asgi.get_client(platform) as client:
            email = f"fuzzy.{uuid.uuid4().hex[:8]}@example.com"
            body = {"email": email, "password": "Golgi-Apparatus-55", "full_name": "Fuzzy Student"}
            registered = client.post("/auth/register", json=body)
            assert registered.status_code == 201, registered.text
            student_id = uuid.UUID(registered.json()["id"])
            course: dict[str, Any] = {"slug": "fuzz-course", "title": "Fuzz", "subject": "biology", "grade": "11"}
            course |= {"price_paise": 100, "capacity": 5, "is_published": True}
            course["lessons"] = [{"title": "L", "duration_minutes": 5}]
            assert client.post("/courses", json=course, headers=admin).status_code == 201
        # No session id: a fuzzed logout cannot sign the student out of the rest of the run.
        student = bearer(issuer.issue(user_id=student_id, role="student", session_id=None))
        tables = Tables(data_dir)
        yield Target(platform, data_dir, {"student": student, "admin": admin}, tables)
        tables.close()
    finally:
        asgi.shutdown_lifespans()


def header(response: Any, name: str) -> str:
    value = response.headers.get(name) or response.headers.get(name.title()) or ""
    return str(value[0] if isinstance(value, list) else value)


def describe(case: Any) -> str:
    parts = [f"path={case.formatted_path}"]
    for name in ("query", "body"):
        value = getattr(case, name, None)
        if value not in (None, {}) and not repr(value).startswith("<schemathesis"):
            parts.append(f"{name}={value!r}"[:300])
    return " ".join(parts)


def fuzz_operation(t: Target, operation: Any, deadline: float, failures: list[str]) -> int:
    """Runs one operation's examples as each caller; returns how many requests were sent."""
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    sent = 0
    reported = 0
    name = f"{operation.method.upper()} {operation.path}"

    def fail(message: str) -> None:
        nonlocal reported
        reported += 1
        if reported <= MAX_REPORTED_PER_OPERATION:
            failures.append(f"{name}: {message}")

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        if sent and time.monotonic() > deadline:  # past its share, an operation still gets one example
            return
        for who, auth in t.callers.items():
            t.tables.settle()
            before = t.tables.snapshot()
            try:
                response = case.call(headers=auth, timeout=10)
            except Exception as exc:  # the transport or the app blew up: as bad as a 500
                fail(f"as {who}: {type(exc).__name__}: {str(exc)[:200]} ({describe(case)})")
                continue
            sent += 1
            status = response.status_code
            if status >= 500:
                fail(f"as {who}: {status} {response.text[:200]} ({describe(case)})")
            elif status >= 400:
                content_type = header(response, "content-type")
                if not content_type.startswith("application/problem+json"):
                    fail(f"as {who}: {status} as {content_type!r}, not problem+json ({describe(case)})")
                t.tables.settle()
                changed = sorted(k for k, v in t.tables.snapshot().items() if before.get(k) != v)
                if changed:
                    fail(f"as {who}: refused with {status} but wrote to {changed} ({describe(case)})")

    run()
    return sent


def start(t: Target) -> None:
    """Starts the platform if needed and lets its start-up work finish.

    The schemathesis pytest plugin ends an ASGI app's lifespan after every test, so each test
    starts the platform again (migrations are no-ops, the analytics aggregator runs a first pass).
    """
    with asgi.get_client(t.platform) as client:
        assert client.get("/health").status_code == 200
    t.tables.quiesce()


@pytest.mark.parametrize("service", TARGETS)
def test_fuzz_service_openapi(target: Target, service: str) -> None:
    start(target)
    schema: Any = schemathesis.openapi.from_asgi(f"/openapi/{service}.json", target.platform)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{service} publishes no operations"
    share = BUDGET_SECONDS / len(TARGETS)
    finish = time.monotonic() + share
    failures: list[str] = []
    starved = []
    for index, operation in enumerate(operations):
        # Each operation gets an equal part of what is left of this service's share.
        deadline = time.monotonic() + (finish - time.monotonic()) / (len(operations) - index)
        if fuzz_operation(target, operation, deadline, failures) == 0:
            starved.append(f"{operation.method.upper()} {operation.path}")
    assert not failures, f"{len(failures)} fuzzing failure(s) in {service}:\n" + "\n".join(failures)
    assert not starved, f"no request reached {starved} within the time budget"


def test_refused_enrolment_holds_nothing(target: Target) -> None:
    """What the saga log keeps of a refused enrolment is a finished saga: no seat, no order, no enrolment."""
    start(target)
    before = target.tables.snapshot()
    with asgi.get_client(target.platform) as client:
        response = client.post("/enrollments", json={"course_id": str(uuid.uuid4())}, headers=target.callers["student"])
    assert response.status_code == 404, response.text
    target.tables.settle()
    changed = sorted(k for k, v in target.tables.snapshot().items() if before.get(k) != v)
    assert not changed, f"a refused enrolment wrote to {changed}"
    sagas = target.tables.connections["enrollments"]
    states = {row[0] for row in sagas.execute("SELECT state FROM enrollment_sagas")}
    assert states <= set(TERMINAL_STATES), f"sagas left running after refusals: {states - set(TERMINAL_STATES)}"
