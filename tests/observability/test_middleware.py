"""The pure-ASGI middleware labels by route template and renders failures as problem+json."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY

from observability import ObservabilityMiddleware
from services.kit import errors
from services.kit.app import new_fastapi


def _app() -> httpx.AsyncClient:
    app = new_fastapi()
    errors.install_problem_handlers(app)
    router = APIRouter()

    @router.get("/lessons/{lesson_id}/notes/{note_id}")
    async def note(lesson_id: int, note_id: str) -> dict[str, str]:
        return {"note": note_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    app.include_router(router)
    app.add_middleware(ObservabilityMiddleware, service="probe")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _value(route: str, status: str, method: str = "GET") -> float:
    labels = {"service": "probe", "route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_many_ids_make_one_series_labelled_by_the_template() -> None:
    template = "/lessons/{lesson_id}/notes/{note_id}"
    before = _value(template, "200")
    async with _app() as client:
        for i in range(25):
            assert (await client.get(f"/lessons/{i}/notes/n{i}")).status_code == 200
    assert _value(template, "200") == before + 25
    assert (
        REGISTRY.get_sample_value(
            "http_requests_total",
            {"service": "probe", "route": "/lessons/3/notes/n3", "method": "GET", "status": "200"},
        )
        is None
    )


async def test_unknown_paths_share_one_label_and_get_a_problem() -> None:
    before = _value("unmatched", "404")
    async with _app() as client:
        for path in ("/nope", "/nope/1", "/wp-admin.php"):
            response = await client.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
    assert _value("unmatched", "404") == before + 3


async def test_an_unexpected_error_is_a_500_problem_without_internals(logs) -> None:  # type: ignore[no-untyped-def]
    before = _value("/boom", "500")
    async with _app() as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500 and "kaboom" not in response.text and body["request_id"]
    assert _value("/boom", "500") == before + 1
    errors_logged = [line for line in logs.lines() if line.get("event") == "unhandled_error"]
    assert errors_logged and "kaboom" in errors_logged[0]["exception"] and errors_logged[0]["trace_id"]


async def test_bad_input_names_the_field() -> None:
    async with _app() as client:
        response = await client.get("/lessons/abc/notes/x")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.lesson_id"


async def test_one_request_one_span_one_line_one_sample_on_the_same_trace(spans, logs) -> None:  # type: ignore[no-untyped-def]
    import re

    template = "/lessons/{lesson_id}/notes/{note_id}"
    async with _app() as client:
        response = await client.get("/lessons/7/notes/n7", headers={"user-agent": "probe/1"})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", request_id), "uuid4().hex's shape"
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    trace_id, span_id = format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")
    assert response.headers["traceresponse"] == f"00-{trace_id}-{span_id}-01"
    assert span.name == f"GET {template}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/lessons/7/notes/n7",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "cerebrum.request_id": request_id,
        "server.address": "t",
        "client.address": "127.0.0.1",
        "user_agent.original": "probe/1",
        "cerebrum.service": "probe",
        "http.route": template,
        "http.response.status_code": 200,
    }
    (line,) = [line for line in logs.lines() if line.get("event") == "request"]
    assert {k: line[k] for k in ("method", "route", "path", "status", "client", "service", "request_id")} == {
        "method": "GET",
        "route": template,
        "path": "/lessons/7/notes/n7",
        "status": 200,
        "client": "127.0.0.1",
        "service": "probe",
        "request_id": request_id,
    }
    assert (line["trace_id"], line["span_id"], line["level"]) == (trace_id, span_id, "info")
    sample = REGISTRY.get_sample_value(
        "http_request_duration_seconds_count", {"service": "probe", "route": template, "method": "GET", "status": "200"}
    )
    assert sample is not None and sample >= 1
    exemplars = [
        s.exemplar
        for metric in REGISTRY.collect()
        if metric.name == "http_requests"
        for s in metric.samples
        if s.labels.get("route") == template and s.exemplar is not None
    ]
    assert exemplars and exemplars[0].labels == {"trace_id": trace_id}
