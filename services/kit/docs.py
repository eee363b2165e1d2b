"""API docs that work offline: Swagger UI and ReDoc served from the platform, not from a CDN.

The assets come from the ``fastapi-offline`` package (MIT, a few hundred kilobytes, kept in step
with Swagger UI 5 and ReDoc 2); the pages are FastAPI's own, pointed at them. Everything lives
under ``/docs/<service>/`` so that the embedded platform, which dispatches ``/docs/<service>`` to
that service, serves it the same as a service on its own port.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"


def install_offline_docs(app: FastAPI, *, service: str, openapi_url: str) -> None:
    """``/docs/<service>`` (Swagger UI), ``/docs/<service>/redoc`` and the assets both load."""
    base = f"/docs/{service}"
    assets = f"{base}/assets"
    app.mount(assets, StaticFiles(directory=ASSETS), name=f"{service}-docs-assets")

    @app.get(base, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(f"{base}/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{assets}/favicon.png",
            with_google_fonts=False,
        )
