from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.contracts.events import (
    EnrollmentCancelled,
    EnrollmentCompleted,
    EnrollmentConfirmed,
    EnrollmentCreated,
    EnrollmentReopened,
    ProgressUpdated,
)
from services.enrollments.consumers import consumed
from services.enrollments.models import INBOX, OUTBOX
from services.enrollments.recovery import SagaRecovery
from services.enrollments.routes import router
from services.enrollments.saga import EnrollmentSaga
from services.enrollments.service import EnrollmentsContext
from services.enrollments.settings import EnrollmentsSettings
from services.enrollments.upstreams import Upstreams
from services.kit.app import ServiceKit, build_service_app
from services.kit.auth import ServiceTokens, TokenIssuer
from services.kit.http import AiohttpTransport, Transport

PUBLISHES = (
    EnrollmentCancelled,
    EnrollmentCompleted,
    EnrollmentConfirmed,
    EnrollmentCreated,
    EnrollmentReopened,
    ProgressUpdated,
)
"""The contracts this service records in its outbox (their counters exist at zero from start-up)."""

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: EnrollmentsSettings | None = None, transport: Transport | None = None) -> FastAPI:
    """Builds the enrollments service: enrolments, progress and the enrolment saga.

    ``transport`` carries the calls to users, courses and payments: the embedded platform passes an
    ``AsgiTransport`` into its own process; by default they go over the network (aiohttp).
    """
    settings = settings or EnrollmentsSettings()
    kit = ServiceKit.build(settings)
    owned = transport is None
    calls: Transport = transport or AiohttpTransport()
    upstreams = Upstreams(
        settings=settings, transport=calls, tokens=ServiceTokens(TokenIssuer(settings), settings.service_name)
    )
    saga = EnrollmentSaga(db=kit.db, upstreams=upstreams, settings=settings)
    recovery = SagaRecovery(saga=saga, db=kit.db, settings=settings)

    async def start_recovery(_kit: ServiceKit) -> None:
        await recovery.start()

    async def stop_recovery(_kit: ServiceKit) -> None:
        await recovery.stop()
        if owned:
            await calls.close()

    app = build_service_app(
        kit,
        title="Cerebrum enrollments",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_startup=[start_recovery],
        on_shutdown=[stop_recovery],
        description="Enrolments, progress and course completions, and the enrolment saga across services.",
        outbox=OUTBOX,
        publishes=PUBLISHES,
        inbox=INBOX,
        handlers=consumed(),
    )
    app.state.enrollments = EnrollmentsContext(settings=settings, upstreams=upstreams, saga=saga, recovery=recovery)
    return app
