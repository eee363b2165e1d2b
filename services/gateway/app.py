from __future__ import annotations

from pathlib import Path

import yaml
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from services.gateway.edge import EdgeCopies
from services.gateway.proxy import Gateway
from services.gateway.routes import Forwarding, router
from services.gateway.routing import ROUTES
from services.gateway.settings import GatewaySettings
from services.gateway.shadow import ShadowMirror, ShadowShares, shadow_clients
from services.gateway.shadow_diff import ShadowRules
from services.gateway.shadow_routes import router as shadow_router
from services.gateway.split import Side, TrafficSplit
from services.gateway.tracking import TrackedKeys
from services.kit.app import ServiceKit, build_service_app
from services.kit.auth import revoked_session_key
from services.kit.edge import generations
from services.kit.http import AiohttpTransport, ServiceClient, Transport, breaker_factory

MIGRATIONS = Path(__file__).parent / "migrations"


def build_clients(
    settings: GatewaySettings, transports: dict[str, Transport] | None, monolith: Transport | None
) -> dict[tuple[str, Side], ServiceClient]:
    """One client per upstream and side; each upstream has its own breaker."""
    breakers = breaker_factory("gateway", threshold=settings.breaker_threshold, ttl=settings.breaker_ttl_seconds)
    network = AiohttpTransport(pool_size=200)
    clients: dict[tuple[str, Side], ServiceClient] = {}
    for name, url in settings.upstreams.items():
        transport = (transports or {}).get(name, network)
        clients[(name, "service")] = ServiceClient(
            service="gateway",
            upstream=name,
            base_url=url if name not in (transports or {}) else "http://embedded",
            transport=transport,
            breakers=breakers,
            timeout=settings.timeout_seconds,
            pass_server_errors=True,
        )
        if settings.monolith_url or monolith is not None:
            clients[(name, "monolith")] = ServiceClient(
                service="gateway",
                upstream="monolith",
                base_url=settings.monolith_url or "http://embedded",
                transport=monolith or network,
                breakers=breakers,
                timeout=settings.timeout_seconds,
                pass_server_errors=True,
            )
    return clients


def build_mirror(
    settings: GatewaySettings, kit: ServiceKit, clients: dict[tuple[str, Side], ServiceClient]
) -> ShadowMirror:
    """Shadow traffic: its own clients (short timeout, no retries, own breakers) to the same upstreams."""
    raw = yaml.safe_load(settings.shadow_rules_file.read_text()) if settings.shadow_rules_file else None
    return ShadowMirror(
        shares=ShadowShares(db=kit.db, refresh_seconds=settings.weights_refresh_seconds),
        clients=shadow_clients(
            clients,
            timeout=settings.shadow_timeout_seconds,
            threshold=settings.breaker_threshold,
            ttl=settings.breaker_ttl_seconds,
        ),
        rules=ShadowRules.of(raw),
        prefixes=list(ROUTES),
        queue_size=settings.shadow_queue_size,
        workers=settings.shadow_workers,
        learn_first=settings.shadow_learn_first,
        learn_share=settings.shadow_learn_share,
    )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    transports: dict[str, Transport] | None = None,
    monolith: Transport | None = None,
) -> FastAPI:
    """Builds the gateway; embedded, the composition root hands in-process transports to the services."""
    settings = settings or GatewaySettings()
    kit = ServiceKit.build(settings)
    clients = build_clients(settings, transports, monolith)
    split = TrafficSplit(
        db=kit.db,
        has_monolith=(settings.monolith_url is not None or monolith is not None),
        refresh_seconds=settings.weights_refresh_seconds,
        prefixes=ROUTES,
    )
    mirror = build_mirror(settings, kit, clients)
    # Where the rate limit reads the copies' checks in one script (one Redis server, not a cluster,
    # whose one connection could follow only its own node's keys).
    tracked = (
        TrackedKeys(settings, (generations(settings.redis_key_prefix), revoked_session_key(settings, "")))
        if settings.redis_url and kit.limiter.reads_keys
        else None
    )

    async def start_tracking(_kit: ServiceKit) -> None:
        if tracked is not None:
            await tracked.start()

    async def stop_tracking(_kit: ServiceKit) -> None:
        if tracked is not None:
            await tracked.stop()

    async def stop_mirror(_kit: ServiceKit) -> None:
        await mirror.close()

    app = build_service_app(
        kit,
        title="Cerebrum API gateway",
        routers=[router, shadow_router],
        on_startup=[start_tracking],
        on_shutdown=[stop_mirror, stop_tracking],
        migrations_dir=MIGRATIONS,
        description="One entry point to every service: /api/<prefix>/...",
        checks_sessions=False,
        body_limits={settings.strip_prefix + path: limit for path, limit in settings.body_limits.items()},
    )
    app.router.routes.insert(0, Forwarding())
    app.state.shadow = mirror
    app.state.gateway = Gateway(
        settings=settings,
        verifier=kit.verifier,
        limiter=kit.limiter,
        split=split,
        clients=clients,
        copies=EdgeCopies(settings, None if kit.limiter.reads_keys else kit.redis),
        shadow=mirror,
        tracked=tracked,
        signed_out=kit.signed_out,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "x-served-by",
            "x-request-id",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
            "x-cache",
            "age",
        ],
    )
    return app
