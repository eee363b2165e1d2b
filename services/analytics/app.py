from __future__ import annotations

import gc
from pathlib import Path

from fastapi import FastAPI

from services.analytics import repository
from services.analytics.aggregator import Aggregator, BackgroundJobs
from services.analytics.handlers import build_handlers
from services.analytics.live import EventRate
from services.analytics.models import INBOX
from services.analytics.partitions import PartitionKeeper
from services.analytics.routes import router
from services.analytics.service import AnalyticsContext
from services.analytics.settings import AnalyticsSettings
from services.analytics.telemetry import declare_ingest_series
from services.kit.app import ServiceKit, build_service_app, setup_process_telemetry

MIGRATIONS = Path(__file__).parent / "migrations"


def build_analytics_context(kit: ServiceKit, settings: AnalyticsSettings) -> AnalyticsContext:
    partitions = PartitionKeeper(
        kit.db,
        behind=settings.partition_months_behind,
        ahead=settings.partition_months_ahead,
        retention_months=settings.retention_months,
    )
    rate = EventRate(kit.redis, settings)
    aggregator = Aggregator(db=kit.db, settings=settings, rate=rate)
    jobs = BackgroundJobs(aggregator=aggregator, partitions=partitions, settings=settings)
    return AnalyticsContext(settings=settings, partitions=partitions, aggregator=aggregator, jobs=jobs, rate=rate)


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """Builds the analytics service: event ingest, aggregates, dashboards, reports and the live view."""
    settings = settings or AnalyticsSettings()
    kit = ServiceKit.build(settings)
    if not kit.db.is_sqlite:
        repository.install_staging(kit.db.engine)
    ctx = build_analytics_context(kit, settings)
    declare_ingest_series(settings.service_name)

    async def start_jobs(_kit: ServiceKit) -> None:
        async with kit.db.session_scope() as db:
            await repository.ensure_watermark(db=db)
        await ctx.jobs.start()

    async def stop_jobs(_kit: ServiceKit) -> None:
        await ctx.jobs.stop()

    app = build_service_app(
        kit,
        title="Cerebrum analytics",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_startup=[start_jobs],
        on_shutdown=[stop_jobs],
        description="Learning events, per-learner and per-course aggregates, reports and a live view.",
        inbox=INBOX,
        handlers=build_handlers(ctx),
        body_limits={"/analytics/events": settings.max_batch_bytes},
    )
    app.state.analytics = ctx
    return app


def create_app_from_env() -> FastAPI:
    """The app uvicorn serves (``uvicorn --factory services.analytics.app:create_app_from_env``)."""
    settings = AnalyticsSettings()
    setup_process_telemetry(settings)
    app = create_app(settings)
    # The process is a server from here on: move the startup heap (some 200,000 objects of imported
    # modules) out of the collector's reach, or every collection triggered by a batch of a thousand
    # events rescans it — a third of the ingest cost at a thousand events a request.
    gc.freeze()
    return app
