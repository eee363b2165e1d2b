"""A new student's welcome and a scored test's message, queued and sent, are served from
SQLAlchemy's compiled cache after the first student's (tests/sql_cache.py)."""

from __future__ import annotations

import pytest

from services.kit.time import utcnow
from tests.services.communication.conftest import CommunicationApi, scored_test
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_student_s_messages_compile_no_statement(comms: CommunicationApi) -> None:
    for _ in range(2):  # the first student's events and sends compile what the path needs
        with compiled_in_this_task(comms.kit.db.engine.sync_engine) as compiled:
            user_id, _ = await comms.register()
            assert await comms.deliver(scored_test(user_id, utcnow())) == [None]
            sent = await comms.dispatch()
        assert sent == 2, "the welcome and the score, by email"
    assert compiled == []
