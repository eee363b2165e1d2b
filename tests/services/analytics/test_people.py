"""A deleted account's client events keep what is counted and lose whatever else the client sent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.analytics.models import EVENTS
from services.contracts import events as contracts
from tests.services.analytics.conftest import AnalyticsApi, consumed, learning_event

pytestmark = pytest.mark.integration


async def _properties(analytics: AnalyticsApi) -> dict[str, list[dict[str, object]]]:
    async with analytics.app.state.kit.db.session_scope() as db:
        rows = (await db.execute(select(EVENTS.c.user_id, EVENTS.c.properties).order_by(EVENTS.c.seq))).all()
    found: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        found.setdefault(str(row.user_id), []).append(row.properties)
    return found


async def test_a_deleted_users_events_keep_their_counts_and_lose_what_the_client_wrote(
    analytics: AnalyticsApi,
) -> None:
    leaving, staying = analytics.student_id, analytics.other_id
    chatty = {"seconds": 40, "topic": "genetics", "correct": True, "note": "Asha Rao, asha@example.com"}
    sent = [learning_event(leaving, properties=chatty), learning_event(staying, properties=chatty)]
    assert (await analytics.send(sent)).status_code == 202
    await analytics.fold()
    before = await analytics.dashboard(leaving)

    deleted = consumed("user.deleted", contracts.UserDeleted(user_id=leaving))
    await analytics.deliver(deleted)
    await analytics.deliver(deleted)  # a redelivery changes nothing

    stored = await _properties(analytics)
    assert stored[str(leaving)] == [{"seconds": 40, "topic": "genetics", "correct": True}]
    assert stored[str(staying)] == [chatty], "another student's events are untouched"
    await analytics.fold()
    assert await analytics.dashboard(leaving) == before
