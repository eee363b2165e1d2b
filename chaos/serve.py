"""``python -m chaos.serve NAME --port P``: one service as ``cerebrum serve`` runs it, with faults installed.

The app is built exactly as distributed mode builds it; then the fault middleware and admin router
are added if the app factory did not already (``CHAOS_ENABLED`` on ``ServiceSettings``), reading
the token from ``CHAOS_TOKEN``. Only the chaos runner starts services this way.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn

from services.kit.faults import install_faults


def build(name: str, *, migrate: bool) -> tuple[Any, Any]:
    """Builds a service's (or the gateway's) app and settings from the environment."""
    if name == "gateway":
        from services.gateway.app import create_app as create_gateway_app
        from services.gateway.settings import GatewaySettings

        settings: Any = GatewaySettings()
        return create_gateway_app(settings), settings
    from cerebrum.registry import SERVICES, settings_for

    if name not in SERVICES:
        raise SystemExit(f"no service called {name}; known: gateway, {', '.join(SERVICES)}")
    settings = settings_for(name, migrate_on_start=migrate)
    return SERVICES[name].create_app(settings), settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.serve")
    parser.add_argument("name")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args(argv)
    from services.kit.app import setup_process_telemetry
    from services.kit.settings import ServiceSettings

    # Telemetry first: the database and Redis instrumentation must see the engines being made.
    setup_process_telemetry(ServiceSettings(service_name=args.name))
    app, settings = build(args.name, migrate=args.migrate)
    enabled = os.environ.get("CHAOS_ENABLED", "").strip().lower() in ("1", "true", "yes", "on")
    install_faults(app, settings, enabled=enabled or None, token=os.environ.get("CHAOS_TOKEN") or None)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False, lifespan="on", server_header=False
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
