"""The app factory every service is built with: health, readiness, metrics, errors and telemetry."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Table

from observability import (
    ObservabilityMiddleware,
    configure_logging,
    configure_tracing,
    instrument_libraries,
    render_metrics,
)
from observability.metrics import at_zero
from services.contracts.events import Payload
from services.kit import errors
from services.kit.auth import REVOCATION_SKIPPED, TokenVerifier
from services.kit.bodylimit import install_body_limit
from services.kit.cache import create_redis
from services.kit.db import Database
from services.kit.docs import install_offline_docs
from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import EventBus, Handler, ReadAhead
from services.kit.events.inprocess import InProcessBus, embedded_bus
from services.kit.events.outbox import OutboxRelay
from services.kit.events.rabbitmq import RabbitBus
from services.kit.events.telemetry import zero_relay_series
from services.kit.faults import install_faults
from services.kit.health import Check, broker_check, database_check, redis_check, run_checks
from services.kit.migrations import upgrade
from services.kit.proxies import ForwardedClient
from services.kit.ratelimit import RateLimiter
from services.kit.revocations import SignedOutSessions
from services.kit.settings import ServiceSettings

log = structlog.get_logger("cerebrum.app")
Hook = Callable[["ServiceKit"], Awaitable[None]]


@dataclass
class ServiceKit:
    """The collaborators a service is built from, made once by its composition root."""

    settings: ServiceSettings
    db: Database
    redis: aioredis.Redis
    limiter: RateLimiter
    verifier: TokenVerifier
    bus: EventBus
    checks: dict[str, Check] = field(default_factory=dict)
    relay: OutboxRelay | None = None
    consumer: EventConsumer | None = None
    signed_out: SignedOutSessions | None = None
    """Sessions signed out, followed in memory on a real Redis (``kit.revocations``); None on the stand-in."""

    @classmethod
    def build(cls, settings: ServiceSettings) -> ServiceKit:
        db = Database.from_settings(settings)
        client = create_redis(settings)
        checks: dict[str, Check] = {"database": database_check(db), "redis": redis_check(client)}
        if settings.rabbitmq_url:
            checks["broker"] = broker_check(settings.rabbitmq_url)
        return cls(
            settings=settings,
            db=db,
            redis=client,
            limiter=RateLimiter(settings),
            verifier=TokenVerifier(settings),
            bus=build_bus(settings),
            checks=checks,
            signed_out=SignedOutSessions(settings) if settings.redis_url else None,
        )

    async def start_events(
        self,
        *,
        outbox: Table | None,
        inbox: Table | None,
        handlers: Mapping[str, Handler],
        read_ahead: ReadAhead | None = None,
    ) -> None:
        """Starts relaying the service's outbox and consuming the events it handles."""
        settings = self.settings
        if outbox is not None:
            self.relay = OutboxRelay(
                service=settings.service_name,
                db=self.db,
                outbox=outbox,
                bus=self.bus,
                batch_size=settings.relay_batch_size,
                stop_timeout=settings.job_stop_timeout_seconds,
            )
            await self.relay.start()
        if handlers:
            if inbox is None:
                raise ValueError(f"{settings.service_name} handles events but declares no inbox table")
            self.consumer = EventConsumer(
                service=settings.service_name, db=self.db, inbox=inbox, handlers=handlers, read_ahead=read_ahead
            )
            await self.bus.start_consumer(self.consumer)

    async def close(self) -> None:
        if self.signed_out is not None:
            await self.signed_out.stop()
        if self.relay is not None:
            await self.relay.stop()
        if isinstance(self.bus, InProcessBus):
            if self.consumer is not None:
                await self.bus.stop_consumer(self.consumer)
        else:
            await self.bus.close()
        await self.limiter.aclose()
        await self.db.dispose()
        await self.redis.aclose()


def build_bus(settings: ServiceSettings) -> EventBus:
    """RabbitMQ when RABBITMQ_URL is set; otherwise the process's in-process bus."""
    if settings.rabbitmq_url:
        return RabbitBus(
            settings.rabbitmq_url,
            consumer_batch=settings.consumer_batch_size,
            consumer_linger_seconds=settings.consumer_linger_ms / 1000,
            max_retries=settings.consumer_max_retries,
            retry_base_ms=settings.consumer_retry_base_ms,
        )
    bus = embedded_bus(str(settings.data_dir))
    bus.max_retries = settings.consumer_max_retries
    return bus


_NATIVE_TELEMETRY = "telemetry" in inspect.signature(FastAPI.__init__).parameters


def new_fastapi(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose own built-in telemetry (recent FastAPI releases) is off.

    Our one ASGI middleware already opens the server span and records the RED metrics; FastAPI's
    native spans per dependency, endpoint and serialisation would double the cost of every request.
    """
    if _NATIVE_TELEMETRY:
        kwargs["telemetry"] = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return FastAPI(**kwargs)


def setup_process_telemetry(settings: ServiceSettings, *, process_name: str | None = None) -> None:
    """Logging and tracing for this process; called once by whatever starts the process."""
    name = process_name or settings.service_name
    configure_logging(service=name, level=settings.log_level, fmt=settings.log_format)
    if settings.observability:
        configure_tracing(service_name=name, service_version=settings.service_version, environment=settings.environment)
        instrument_libraries("sqlalchemy", "redis", "aiohttp")


def build_service_app(
    kit: ServiceKit,
    *,
    title: str,
    routers: Sequence[APIRouter],
    migrations_dir: Path | None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    description: str = "",
    outbox: Table | None = None,
    inbox: Table | None = None,
    handlers: Mapping[str, Handler] | None = None,
    read_ahead: ReadAhead | None = None,
    publishes: Collection[type[Payload]] = (),
    checks_sessions: bool = True,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """Builds a service's FastAPI app around its routers.

    ``read_ahead``: reads what a consumer batch's handlers need, once for the batch (``ReadAhead``).
    ``publishes``: the contracts it records in ``outbox``; ``checks_sessions``: its routes look each
    caller's session up in Redis (``CurrentUser``). Their counters exist at zero from start-up.
    ``body_limits``: routes (by path template) whose request bodies may be larger than ``max_body_bytes``.
    """
    settings = kit.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrations_dir is not None and settings.migrate_on_start:
            await upgrade(kit.db, migrations_dir)
        if kit.signed_out is not None:
            await kit.signed_out.start()
        for hook in on_startup:
            await hook(kit)
        await kit.start_events(outbox=outbox, inbox=inbox, handlers=handlers or {}, read_ahead=read_ahead)
        log.info("service_started", service=settings.service_name, embedded=settings.embedded)
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook(kit)
            await kit.close()

    app = new_fastapi(
        title=title,
        version=settings.service_version,
        description=description,
        lifespan=lifespan,
        openapi_url=f"/openapi/{settings.service_name}.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.kit = kit
    if outbox is not None:
        kit.db.record_events_in(outbox, source=settings.service_name)
        zero_relay_series(settings.service_name, (contract.event_type for contract in publishes))
    if checks_sessions:
        at_zero(REVOCATION_SKIPPED, settings.service_name)
    install_offline_docs(app, service=settings.service_name, openapi_url=f"/openapi/{settings.service_name}.json")
    errors.install_problem_handlers(app)
    for router in routers:
        app.include_router(router)
    app.include_router(operational_router(kit))
    install_faults(app, settings)
    install_body_limit(app, default=settings.max_body_bytes, routes=body_limits)
    if settings.observability:
        app.add_middleware(ObservabilityMiddleware, service=settings.service_name)
    # Outermost: the telemetry and every route see the client a trusted proxy names.
    app.add_middleware(ForwardedClient, trusted_proxies=settings.trusted_proxies)
    return app


def operational_router(kit: ServiceKit) -> APIRouter:
    """``/health``, ``/ready`` and ``/metrics``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "service": kit.settings.service_name, "version": kit.settings.service_version}

    @router.get("/ready")
    async def ready(request: Request) -> Response:
        results = await run_checks(kit.checks)
        return readiness_response(request, kit.settings.service_name, results)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return router


def readiness_response(request: Request, service: str, results: dict[str, str]) -> Response:
    """200 when every check passed, else a 503 problem naming the failed dependencies."""
    failed = [name for name, result in results.items() if result != "ok"]
    if not failed:
        return JSONResponse({"status": "ready", "service": service, "checks": results})
    return errors.problem(
        request,
        status=503,
        type_="not-ready",
        title="Not ready",
        detail=f"{service} is not ready: {', '.join(failed)} unavailable",
        headers={"Retry-After": "5"},
        service=service,
        checks=results,
        failed=failed,
    )
