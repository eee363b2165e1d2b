"""Events from the broker count as ingested, apart from the clients' ones, once each."""

from __future__ import annotations

import uuid
from datetime import timedelta

from prometheus_client import REGISTRY

from services.contracts import events as contracts
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, consumed, learning_event


def ingested(source: str, outcome: str) -> float:
    labels = {"service": "analytics", "source": source, "outcome": outcome}
    value = REGISTRY.get_sample_value("cerebrum_analytics_events_ingested_total", labels)
    assert value is not None, f"no series {labels}: each source and outcome exists from start-up"
    return value


def registered() -> contracts.UserRegistered:
    return contracts.UserRegistered(user_id=uuid.uuid4(), email="ingest@example.com")


async def test_broker_events_count_under_their_own_source_once_committed(analytics: AnalyticsApi) -> None:
    api = analytics
    before = {(s, o): ingested(s, o) for s in ("http", "broker") for o in ("stored", "duplicate", "expired")}
    metrics = (await api.client.get("/metrics")).text
    assert 'source="broker"' in metrics and 'source="http"' in metrics

    good = [consumed("user.registered", registered()) for _ in range(2)]
    broken = consumed("user.registered", registered())
    broken.data["user_id"] = "not-a-uuid"  # its handler fails: the batch is retried event by event
    outcomes = await api.app.state.kit.consumer.handle_batch([good[0], broken, good[1]])
    assert outcomes[0] is None and outcomes[1] is not None and outcomes[2] is None
    retention = api.ctx.settings.retention_months
    old = consumed("user.registered", registered(), at=utcnow() - timedelta(days=31 * (retention + 1)))
    await api.deliver(old)
    await api.deliver(*good)  # redelivered: the inbox drops them before any handler runs

    assert ingested("broker", "stored") - before[("broker", "stored")] == 2, "counted once, not once per try"
    assert ingested("broker", "expired") - before[("broker", "expired")] == 1
    assert ingested("broker", "duplicate") == before[("broker", "duplicate")]

    response = await api.send([learning_event(api.student_id)])
    assert response.status_code == 202
    assert ingested("http", "stored") - before[("http", "stored")] == 1
    assert ingested("broker", "stored") - before[("broker", "stored")] == 2
