"""A learner's events and dashboard are served from SQLAlchemy's compiled cache after the first
learner's (tests/sql_cache.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.services.analytics.conftest import AnalyticsApi
from tests.services.analytics.test_consumed import learner_journey
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_learner_s_events_and_dashboard_compile_no_statement(analytics: AnalyticsApi) -> None:
    course_id = uuid.uuid4()
    for _ in range(2):  # the first learner's batch and read compile what the path needs
        user_id = uuid.uuid4()
        with compiled_in_this_task(analytics.app.state.kit.db.engine.sync_engine) as compiled:
            await analytics.deliver(*learner_journey(user_id, course_id))
            dashboard = await analytics.dashboard(user_id)
        assert dashboard["user_id"] == str(user_id)
    assert compiled == []
