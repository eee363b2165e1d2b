"""A private embedded platform for the security tests: its own folder, key space and generous limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from cerebrum.platform import Platform
from cerebrum.runner import build_platform
from tests.apps import FAST_HASHING

# Every service in the package tree that the embedded platform must serve (the gateway too).
SERVICE_PACKAGES = ("users", "courses", "enrollments", "payments", "analytics", "communication", "assessments")
# The tests make more accounts and logins from one client than the defaults allow a minute; the
# limits themselves are not what this suite proves.
GENEROUS_LIMITS = {
    "register_limit_per_client": "100000/minute",
    "login_limit_per_client": "100000/minute",
    "login_limit_per_account": "100000/minute",
    "rate_limits": "1000000/minute",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def security_overrides(data_dir: Path, **extra: Any) -> dict[str, Any]:
    """Settings for a private embedded platform: its own folder, its own Redis key space."""
    return {
        "data_dir": data_dir,
        "environment": "test",
        "redis_key_prefix": f"sec-{uuid.uuid4().hex[:10]}:",
        "live_interval_seconds": 0.2,
        **FAST_HASHING,
        **GENEROUS_LIMITS,
        **extra,
    }


def add_missing_services(platform: Platform, overrides: dict[str, Any]) -> list[str]:
    """Serves, directly, any service the platform's registry leaves out (the gateway still cannot reach it).

    Returns the names added, so that a test can fail on the wiring while the others still prove
    the service's own rules.
    """
    added = []
    if "analytics" not in platform.apps:
        from services.analytics.app import create_app
        from services.analytics.settings import AnalyticsSettings

        app = create_app(AnalyticsSettings(**overrides))
        platform.apps["analytics"] = app
        platform.routes["analytics"] = app
        added.append("analytics")
    return added


@asynccontextmanager
async def running_platform(data_dir: Path, **extra: Any) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """The whole embedded platform in this process, and a client that talks to it in-process."""
    overrides = security_overrides(data_dir, **extra)
    platform = build_platform(overrides=overrides)
    platform.missing_from_registry = add_missing_services(platform, overrides)  # type: ignore[attr-defined]
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(platform.running())
        transport = httpx.ASGITransport(app=platform, client=("198.51.100.23", 5000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://academy", timeout=30)
        )
        yield platform, client
