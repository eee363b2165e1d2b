"""Every service stops within its job stop timeout while a background job is blocked mid-iteration.

The block is real: another connection holds an exclusive lock on the table the job reads, so the
job's query waits in PostgreSQL until shutdown cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from services.analytics.app import create_app as analytics_app
from services.analytics.settings import AnalyticsSettings
from services.communication.app import create_app as communication_app
from services.communication.settings import CommunicationSettings
from services.enrollments.app import create_app as enrollments_app
from services.enrollments.settings import EnrollmentsSettings
from services.payments.app import create_app as payments_app
from services.payments.settings import PaymentsSettings
from services.users.app import create_app as users_app
from services.users.settings import UsersSettings
from tests.apps import FAST_HASHING, real_servers
from tests.conftest import PG_URL, LogCapture

STOP_TIMEOUT = 20.0  # long enough that only a cancellation, never the timeout, ends the job here
GUARD = 60.0

# service -> (app factory, settings class, settings making the job poll often, the table it waits on)
CASES: dict[str, tuple[Callable[[Any], FastAPI], type[Any], dict[str, Any], str]] = {
    "enrollments saga recovery": (
        enrollments_app,
        EnrollmentsSettings,
        {"saga_recovery_interval_seconds": 0.05},
        "enrollment_sagas",
    ),
    "payments order expiry": (payments_app, PaymentsSettings, {"order_expiry_interval_seconds": 0.05}, "orders"),
    "analytics aggregator": (
        analytics_app,
        AnalyticsSettings,
        {"aggregator_interval_seconds": 0.05},
        "aggregation_state",
    ),
    "communication dispatcher": (
        communication_app,
        CommunicationSettings,
        {"dispatcher_enabled": True, "dispatcher_interval_seconds": 0.05},
        "communication_logs",
    ),
    "users outbox relay": (users_app, UsersSettings, FAST_HASHING, "outbox"),
}


async def _until_blocked(conn: asyncpg.Connection, relation: str) -> None:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass", relation
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no query waited on {relation}")


@pytest.mark.parametrize("case", list(CASES))
async def test_a_service_stops_while_its_job_is_blocked_mid_iteration(
    case: str, pg_schema: str, redis_prefix: str, tmp_path: Path, logs: LogCapture
) -> None:
    create_app, settings_class, polling, table = CASES[case]
    settings = settings_class(
        **real_servers(pg_schema, redis_prefix, tmp_path), job_stop_timeout_seconds=STOP_TIMEOUT, **polling
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    holder = await asyncpg.connect(PG_URL)
    lock = holder.transaction()
    try:
        await lock.start()
        relation = f'"{pg_schema}"."{table}"'
        await holder.execute(f"LOCK TABLE {relation} IN ACCESS EXCLUSIVE MODE")
        await _until_blocked(holder, relation)

        started = time.monotonic()
        await asyncio.wait_for(lifespan.__aexit__(None, None, None), GUARD)
        took = time.monotonic() - started
    finally:
        await lock.rollback()
        await holder.close()

    assert took < STOP_TIMEOUT, f"{case}: shutdown waited {took:.1f}s for a blocked job"
    assert not [line for line in logs.lines() if line.get("event") == "job_abandoned"]
