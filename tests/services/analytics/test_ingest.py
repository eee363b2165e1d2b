"""POST /analytics/events and /analytics/track-activity on the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from services.kit.time import utcnow
from tests.services.analytics.conftest import PROBLEM, AnalyticsApi, learning_event


def duplicates_counted() -> float:
    labels = {"service": "analytics", "source": "http", "outcome": "duplicate"}
    return REGISTRY.get_sample_value("cerebrum_analytics_events_ingested_total", labels) or 0.0


async def test_a_batch_of_a_thousand_is_stored_and_acknowledged_once_committed(
    analytics: AnalyticsApi, spans: InMemorySpanExporter
) -> None:
    api = analytics
    duplicates_before = duplicates_counted()
    batch = [learning_event(uuid.uuid4()) for _ in range(1000)]
    response = await api.send(batch)
    assert response.status_code == 202, response.text
    assert response.json() == {"received": 1000, "stored": 1000, "duplicates": 0}
    assert await api.stored_events() == 1000, "the 202 comes after the commit"
    copies = [s for s in spans.get_finished_spans() if s.name == "COPY analytics_events"]
    assert copies and copies[0].attributes is not None and copies[0].attributes["cerebrum.events"] == 1000

    again = await api.send(batch[:300] + [learning_event(uuid.uuid4())])
    assert again.json() == {"received": 301, "stored": 1, "duplicates": 300}, "resent event ids are ignored"
    assert await api.stored_events() == 1001

    assert duplicates_counted() - duplicates_before == 300
    metrics = (await api.client.get("/metrics")).text
    assert "cerebrum_analytics_events_ingested_total{" in metrics
    assert "cerebrum_analytics_ingest_batch_size_bucket{" in metrics


async def test_one_event_may_be_sent_on_its_own(analytics: AnalyticsApi) -> None:
    api = analytics
    single = learning_event(api.student_id, course_id=None, lesson_id=None)
    del single["properties"]
    response = await api.client.post("/analytics/events", json=single, headers=api.student)
    assert response.status_code == 202, response.text
    assert response.json()["stored"] == 1


async def test_one_bad_event_refuses_the_whole_batch_naming_it(analytics: AnalyticsApi) -> None:
    api = analytics
    batch = [learning_event(uuid.uuid4()) for _ in range(500)]
    batch[417]["user_id"] = "not-a-uuid"
    response = await api.send(batch)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["detail"].startswith("Event 417 is invalid"), body
    assert body["errors"][0]["field"] == "events.417.user_id"
    assert await api.stored_events() == 0, "nothing of a refused batch is written"

    cases: list[tuple[dict[str, Any], str]] = [
        ({"occurred_at": "2026-01-01T10:00:00"}, "events.3.occurred_at"),  # no time zone
        ({"type": "Lesson Viewed"}, "events.3.type"),
        ({"properties": {"blob": "x" * 5000}}, "events.3.properties"),
        ({"properties": {"seconds": -5}}, "events.3.properties.seconds"),
        ({"surprise": 1}, "events.3.surprise"),
        ({"properties": {"seconds": "12"}}, "events.3.properties.seconds"),  # JSON types are not coerced
        ({"properties": {"seconds": True}}, "events.3.properties.seconds"),
        ({"properties": {"correct": 1}}, "events.3.properties.correct"),
        ({"occurred_at": 1767261600}, "events.3.occurred_at"),
        ({"occurred_at": (utcnow() - timedelta(days=800)).isoformat()}, "events.3.occurred_at"),
        ({"occurred_at": (utcnow() + timedelta(days=3)).isoformat()}, "events.3.occurred_at"),
    ]
    for change, field in cases:
        batch = [learning_event(uuid.uuid4()) for _ in range(5)]
        batch[3].update(change)
        response = await api.send(batch)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["errors"][0]["field"] == field, response.json()
    assert await api.stored_events() == 0


async def test_batches_over_the_limit_and_empty_ones_are_refused(analytics: AnalyticsApi) -> None:
    api = analytics
    too_many = await api.send([learning_event(uuid.uuid4()) for _ in range(1001)])
    assert too_many.status_code == 413
    assert too_many.json()["type"].endswith("batch-too-large")
    assert (await api.send([])).status_code == 422
    garbage = await api.client.post("/analytics/events", content=b"{nope", headers=api.admin)
    assert garbage.status_code == 422
    assert await api.stored_events() == 0


async def test_only_json_is_taken_and_a_text_plain_beacon_is_refused_with_415(analytics: AnalyticsApi) -> None:
    api = analytics
    body = orjson.dumps({"events": [learning_event(api.student_id)]})
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        headers = {**api.student, "Content-Type": content_type}
        refused = await api.client.post("/analytics/events", content=body, headers=headers)
        assert refused.status_code == 415, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/unsupported-media-type")
    assert await api.stored_events() == 0
    headers = {**api.student, "Content-Type": "application/json"}
    taken = await api.client.post("/analytics/events", content=body, headers=headers)
    assert taken.status_code == 202, taken.text
    assert await api.stored_events() == 1
    documented = (await api.client.get("/openapi/analytics.json")).json()["paths"]["/analytics/events"]["post"]
    assert "415" in documented["responses"]


async def test_students_send_only_their_own_events(analytics: AnalyticsApi) -> None:
    api = analytics
    own = await api.send([learning_event(api.student_id) for _ in range(3)], headers=api.student)
    assert own.status_code == 202
    mixed = [learning_event(api.student_id), learning_event(api.other_id)]
    refused = await api.send(mixed, headers=api.student)
    assert refused.status_code == 403
    assert refused.json()["index"] == 1
    anonymous = await api.client.post("/analytics/events", json={"events": [learning_event(api.student_id)]})
    assert anonymous.status_code == 401
    assert await api.stored_events() == 3


async def test_a_heartbeat_adds_the_learners_time(analytics: AnalyticsApi) -> None:
    api = analytics
    body = {"course_id": str(uuid.uuid4()), "seconds": 90, "activity": "video"}
    assert (await api.client.post("/analytics/track-activity", json=body)).status_code == 401
    response = await api.client.post("/analytics/track-activity", json=body, headers=api.student)
    assert response.status_code == 202, response.text
    assert response.json()["seconds"] == 90
    bad = await api.client.post("/analytics/track-activity", json={**body, "seconds": 0}, headers=api.student)
    assert bad.status_code == 422
    await api.fold()
    dashboard = await api.dashboard()
    assert dashboard["time_spent_seconds"] == 90
    assert dashboard["current_streak_days"] == 1
