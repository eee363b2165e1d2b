"""The servers a benchmark starts, chosen by BENCH_APP (uvicorn imports ``bench.apps:app``).

``bare`` is the framework ceiling: ``fastapi.FastAPI()`` with one route and nothing else. ``empty``
is one empty route built by our app factory, with or without our middleware. Any other name is
that service, built from the environment as ``cerebrum serve`` builds it (only its own package is
imported, so that three servers start quickly side by side).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from fastapi import FastAPI


def bare_route() -> FastAPI:
    """The upper bound: a plain FastAPI app with one route."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping/{item_id}")
    async def ping(item_id: int) -> dict[str, Any]:
        return {}

    return app


def empty_route(instrumented: bool) -> FastAPI:
    """One empty route from our app factory, with or without our middleware."""
    from observability import ObservabilityMiddleware
    from services.kit.app import new_fastapi, setup_process_telemetry
    from services.kit.settings import ServiceSettings

    if instrumented:
        setup_process_telemetry(ServiceSettings(service_name="bench", log_level="INFO"))
    app = new_fastapi(docs_url=None, openapi_url=None)

    @app.get("/ping/{item_id}")
    async def ping(item_id: int) -> dict[str, Any]:
        return {}

    if instrumented:
        app.add_middleware(ObservabilityMiddleware, service="bench")
    return app


def service(name: str) -> Any:
    """A service's app from the environment, as ``cerebrum serve NAME`` builds it."""
    from bench.seed import settings_class
    from services.kit.app import setup_process_telemetry

    settings = settings_class(name)()
    setup_process_telemetry(settings)  # before the app: the database and Redis instrumentation see the engines
    return importlib.import_module(f"services.{name}.app").create_app(settings)


def build() -> Any:
    which = os.environ.get("BENCH_APP", "empty")
    if which == "bare":
        return bare_route()
    if which == "empty":
        return empty_route(os.environ.get("OBSERVABILITY", "on") != "off")
    if not which.isidentifier() or not os.path.isdir(os.path.join("services", which)):
        raise SystemExit(f"BENCH_APP: unknown app {which!r}")
    return service(which)


app = build()
__import__("gc").freeze()  # as cerebrum serve does: start-up objects out of the collector's sight
