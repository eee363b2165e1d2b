"""A request leaves a span, a RED sample with the template route, and a log line on the same trace."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from tests.conftest import LogCapture
from tests.services.users.conftest import UsersApi

pytestmark = pytest.mark.integration


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"service": "users", "route": route, "method": "GET", "status": status}
    )
    return value or 0.0


async def test_one_request_one_trace_across_span_metric_and_log(
    users: UsersApi, spans: InMemorySpanExporter, logs: LogCapture
) -> None:
    tokens = await users.signed_in("traced@example.com")
    user_id = (await users.client.get("/users/profile", headers=users.bearer(tokens))).json()["id"]
    before = _count("/users/{user_id}", "200")
    spans.clear()
    logs.clear()

    response = await users.client.get(f"/users/{user_id}", headers=users.bearer(tokens))
    assert response.status_code == 200

    server = [s for s in spans.get_finished_spans() if s.attributes.get("http.route") == "/users/{user_id}"]
    assert len(server) == 1
    span = server[0]
    assert span.name == "GET /users/{user_id}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == f"/users/{user_id}"
    trace_id = format(span.context.trace_id, "032x")

    assert _count("/users/{user_id}", "200") == before + 1
    raw_path_series = REGISTRY.get_sample_value(
        "http_requests_total", {"service": "users", "route": f"/users/{user_id}", "method": "GET", "status": "200"}
    )
    assert raw_path_series is None, "the raw path must never become a label"

    access = [
        line for line in logs.lines() if line.get("event") == "request" and line.get("path") == f"/users/{user_id}"
    ]
    assert len(access) == 1
    assert access[0]["trace_id"] == trace_id
    assert access[0]["service"] == "users" and access[0]["route"] == "/users/{user_id}"
    assert access[0]["request_id"] == response.headers["x-request-id"]
    assert {"timestamp", "level", "span_id"} <= set(access[0])

    # Database queries are children of the server span.
    children = [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == span.context.span_id]
    assert any(s.name.startswith("SELECT") for s in children), "the database query spans hang under the request span"


async def test_incoming_traceparent_continues_the_callers_trace(users: UsersApi, spans: InMemorySpanExporter) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01", "x-request-id": "req-from-gateway"}
    response = await users.client.get("/users/profile", headers=headers)
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "req-from-gateway"
    assert response.json()["request_id"] == "req-from-gateway"
    span = next(s for s in spans.get_finished_spans() if s.attributes.get("http.route") == "/users/profile")
    assert format(span.context.trace_id, "032x") == caller_trace
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7


async def test_no_password_or_token_reaches_logs_or_spans(
    users: UsersApi, spans: InMemorySpanExporter, logs: LogCapture
) -> None:
    password = "Very-Secret-Pass-77"
    await users.register("quiet@example.com", password=password)
    tokens = (await users.login("quiet@example.com", password)).json()
    await users.client.get("/users/profile", headers=users.bearer(tokens))
    await users.login("quiet@example.com", "Wrong-Secret-Pass-1")
    text = logs.text()
    attributes = " ".join(str(dict(s.attributes or {})) for s in spans.get_finished_spans())
    for secret in (password, "Wrong-Secret-Pass-1", tokens["access_token"], tokens["refresh_token"]):
        assert secret not in text
        assert secret not in attributes
    assert "quiet@example.com" not in text


async def test_metrics_endpoint_serves_openmetrics_with_exemplars(users: UsersApi) -> None:
    await users.client.get("/users/profile")
    response = await users.client.get("/metrics")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    lines = [
        line
        for line in response.text.splitlines()
        if line.startswith("http_requests_total{") and 'route="/users/profile"' in line
    ]
    assert lines and all("# {trace_id=" in line for line in lines)
    assert "http_request_duration_seconds_bucket" in response.text
    assert 'http_requests_in_flight{service="users"}' in response.text
