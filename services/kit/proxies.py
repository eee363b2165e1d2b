"""Whose request is it: the client's address, believed from X-Forwarded-For only when a trusted proxy sent it.

Uvicorn's ProxyHeadersMiddleware does the resolving (the rightmost address in the chain that is not
one of ``trusted_proxies``); this wrapper also keeps the connecting peer, and whether it was
trusted, so that the gateway can extend the chain for the next hop instead of believing a stranger.
Uvicorn's own proxy-header handling is turned off where we run it, so these settings are the only
place trust is decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER = "cerebrum.peer"
"""Scope key: ``(address, trusted)`` of whoever opened the connection, before any forwarding was applied."""


class ForwardedClient:
    """ASGI middleware: ``scope["client"]`` becomes the real client when a trusted proxy says who it is."""

    def __init__(self, app: Any, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.resolver = ProxyHeadersMiddleware(app, trusted_hosts=list(trusted_proxies))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if PEER not in scope:  # the outermost hop in this process saw the connection itself
            client = scope.get("client")
            host = client[0] if client else ""
            scope[PEER] = (host, host in self.resolver.trusted_hosts)
        await self.resolver(scope, receive, send)


def forwarded_for(scope: Any, received: str | None) -> str:
    """X-Forwarded-For for the next hop: a trusted sender's chain plus the sender, else the sender alone."""
    peer, trusted = scope.get(PEER) or ((scope.get("client") or ("",))[0], False)
    if trusted and received:
        return f"{received}, {peer}"
    return str(peer)
