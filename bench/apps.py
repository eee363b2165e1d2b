"""The servers a benchmark starts, chosen by BENCH_APP (uvicorn imports ``bench.apps:app``)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from observability import ObservabilityMiddleware
from services.kit.app import new_fastapi, setup_process_telemetry


def empty_route(instrumented: bool) -> FastAPI:
    """The framework ceiling: one empty route, with or without our middleware."""
    app = new_fastapi(docs_url=None, openapi_url=None)

    @app.get("/ping/{item_id}")
    async def ping(item_id: int) -> dict[str, Any]:
        return {}

    if instrumented:
        app.add_middleware(ObservabilityMiddleware, service="bench")
    return app


def build() -> Any:
    which = os.environ.get("BENCH_APP", "empty")
    if which == "empty":
        instrumented = os.environ.get("OBSERVABILITY", "on") != "off"
        if instrumented:
            from services.kit.settings import ServiceSettings

            setup_process_telemetry(ServiceSettings(service_name="bench", log_level="INFO"))
        return empty_route(instrumented)
    if which == "users":
        from services.users.app import create_app
        from services.users.settings import UsersSettings

        settings = UsersSettings()
        setup_process_telemetry(settings)
        return create_app(settings)
    raise SystemExit(f"BENCH_APP: unknown app {which!r}")


app = build()
__import__("gc").freeze()  # as cerebrum serve does: start-up objects out of the collector's sight
