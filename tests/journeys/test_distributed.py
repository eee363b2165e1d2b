"""`cerebrum up --distributed`: every service its own process on the real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from cerebrum.registry import SERVICES
from tests.conftest import PG_URL, REDIS_URL, free_port, require_server
from tests.deploy.distributed import sql
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration
CEREBRUM = [sys.executable, "-m", "cerebrum.cli"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver(free_port())
    otlp.start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def distributed(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    tmp_path = tmp_path_factory.mktemp("distributed")
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    database, vhost = f"t_{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:10]}"
    sql(f'CREATE DATABASE "{database}"')
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=PG_URL.rsplit("/", 1)[0] + f"/{database}",
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"test:{uuid.uuid4().hex[:8]}:",
        RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        ENVIRONMENT="test",
        PASSWORD_TIME_COST="1",
        PASSWORD_MEMORY_KIB="1024",
        DATA_DIR=str(tmp_path / "data"),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    port = free_port()
    process = subprocess.Popen(
        [*CEREBRUM, "up", "--distributed", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if (
                    all(
                        httpx.get(f"http://127.0.0.1:{s.port}/ready", timeout=2).status_code == 200
                        for s in SERVICES.values()
                    )
                    and httpx.get(url + "/ready", timeout=2).status_code == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("the distributed platform did not become ready in 90 s")
        yield url, env, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def test_a_student_journey_through_the_gateway_of_separate_processes(
    distributed: tuple[str, dict[str, str], subprocess.Popen[bytes]],
) -> None:
    url, env, process = distributed
    subprocess.run([*CEREBRUM, "seed", "catalogue"], env=env, check=True, capture_output=True)
    subprocess.run([*CEREBRUM, "seed", "questions", "--count", "500"], env=env, check=True, capture_output=True)
    with httpx.Client(base_url=url, timeout=10) as api:
        body = {"email": "split@example.com", "password": "Ribosome-Factory-8", "full_name": "Split Student"}
        assert api.post("/api/auth/register", json=body).status_code == 201
        login = api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert api.get("/api/users/profile", headers=bearer).json()["email"] == body["email"]
        courses = api.get("/api/courses").json()
        assert courses["total"] >= 8
        assert api.get("/api/courses/search", params={"q": "photosynthesis"}).json()["items"]
        questions = api.get(
            "/api/questions/random",
            headers=bearer,
            params={"topic": "genetics", "count": 4, "attempt_id": str(uuid.uuid4())},
        )
        assert questions.status_code == 200 and len(questions.json()["questions"]) == 4
        metrics = httpx.get(f"http://127.0.0.1:{SERVICES['users'].port}/metrics").text
        assert 'route="/auth/login"' in metrics and 'service="users"' in metrics


def _trace_id(response: httpx.Response) -> str:
    return response.headers["traceresponse"].split("-")[1]


def _wait_for(
    receiver: OtlpReceiver,
    trace_id: str,
    names: set[str],
    timeout: float = 30,
    exported_by: dict[str, set[str]] | None = None,
) -> list[ReceivedSpan]:
    """Waits until the named spans and every parent they hang from have been exported.

    Each process exports in its own batches, children usually before their parents end.
    `exported_by` names, for a span name, every service whose span of that name to wait for:
    consumers that let a batch gather handle an event later than those that do not.
    """
    deadline = time.monotonic() + timeout
    while True:
        spans = receiver.trace(trace_id)
        known = {s.span_id for s in spans}
        complete = all(s.parent_id is None or s.parent_id in known for s in spans)
        exported = all(
            services <= {s.service for s in spans if s.name == name} for name, services in (exported_by or {}).items()
        )
        if (names <= {s.name for s in spans} and complete and exported) or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


def _root_of(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> ReceivedSpan:
    while span.parent_id is not None and span.parent_id in by_id:
        span = by_id[span.parent_id]
    return span


def _assert_one_tree(spans: list[ReceivedSpan]) -> ReceivedSpan:
    """Every span hangs, parent by parent, under one root: one trace, no broken hop."""
    by_id = {s.span_id: s for s in spans}
    roots = {_root_of(s, by_id).span_id for s in spans}
    orphans = [s.name for s in spans if s.parent_id is not None and s.parent_id not in by_id]
    assert len(roots) == 1 and not orphans, (roots, orphans)
    return by_id[roots.pop()]


def test_enrol_and_pay_form_one_trace_from_gateway_to_notification(
    distributed: tuple[str, dict[str, str], subprocess.Popen[bytes]], receiver: OtlpReceiver
) -> None:
    url, env, _ = distributed
    subprocess.run([*CEREBRUM, "seed", "catalogue"], env=env, check=True, capture_output=True)
    with httpx.Client(base_url=url, timeout=15) as api:
        body = {"email": "traced@example.com", "password": "Golgi-Apparatus-4", "full_name": "Traced Student"}
        user_id = api.post("/api/auth/register", json=body).json()["id"]
        login = api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        course = api.get("/api/courses").json()["items"][1]
        enrolled = api.post("/api/enrollments", json={"course_id": course["id"]}, headers=bearer)
        assert enrolled.status_code == 201, enrolled.text
        order = enrolled.json()["order"]
        checkout = api.post("/api/payments/sandbox/checkout", json={"order_id": order["order_id"]}, headers=bearer)
        fields = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        paid = api.post("/api/payments/verify", json=fields, headers=bearer)
        assert paid.status_code == 200, paid.text
        enrollment_id = enrolled.json()["enrollment_id"]
        deadline = time.monotonic() + 20
        while api.get(f"/api/enrollments/{enrollment_id}/status", headers=bearer).json()["status"] != "confirmed":
            assert time.monotonic() < deadline, "payment.succeeded confirmed the enrolment across processes"
            time.sleep(0.2)

    login_spans = _wait_for(receiver, _trace_id(login), {"POST /auth/login"})
    root = _assert_one_tree(login_spans)
    assert root.service == "gateway" and root.name == "POST /api/{path}"
    assert {"gateway", "users"} <= {s.service for s in login_spans}
    assert any(s.name.startswith("SELECT") and s.service == "users" for s in login_spans), "database hop traced"

    saga = _wait_for(
        receiver,
        _trace_id(enrolled),
        {"POST /enrollments", "POST /courses/{course_id}/seats/reserve", "POST /payments/create-order"},
    )
    _assert_one_tree(saga)
    assert {"gateway", "enrollments", "users", "courses", "payments"} <= {s.service for s in saga}

    wanted = {
        "POST /payments/verify",
        "payment.succeeded publish",
        "payment.succeeded process",
        "enrollment.confirmed publish",
        "enrollment.confirmed process",
    }
    consumers = {
        "payment.succeeded process": {"enrollments", "communication"},
        "enrollment.confirmed process": {"communication", "analytics"},
    }
    payment = _wait_for(receiver, _trace_id(paid), wanted, exported_by=consumers)
    assert wanted <= {s.name for s in payment}, sorted({s.name for s in payment})
    _assert_one_tree(payment)
    by_id = {s.span_id: s for s in payment}
    for name, services in consumers.items():
        processed = [s for s in payment if s.name == name]
        assert {s.service for s in processed} >= services, (name, sorted({s.service for s in processed}))
        for consumer in processed:
            parent = by_id[consumer.parent_id or ""].name
            assert parent == name.replace(" process", " publish"), "child, not merely a link"
    del user_id


def test_the_platform_stops_cleanly_on_ctrl_c(distributed: tuple[str, dict[str, str], subprocess.Popen[bytes]]) -> None:
    _, _, process = distributed
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=40)
    assert b"every process stopped" in output
    for spec in SERVICES.values():
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{spec.port}/health", timeout=1)
