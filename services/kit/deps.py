"""FastAPI dependencies every service shares, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop
per dependency per request for work that never blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.app import ServiceKit
from services.kit.auth import REVOCATION_SKIPPED, Identity, bearer_token, require_admin, revoked_session_key
from services.kit.cache import REDIS_UNAVAILABLE, key
from services.kit.errors import Unauthorized

log = structlog.get_logger("cerebrum.auth")


def from_app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency that hands a route what the app factory put on ``app.state`` under ``name``.

    Each service's context (``AuthDep = Annotated[AuthContext, Depends(from_app_state("auth"))]``)
    and the kit itself are read this way; the ``Annotated`` alias gives the type.
    """

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = get.__qualname__ = f"get_{name}"
    return get


KitDep = Annotated[ServiceKit, Depends(from_app_state("kit"))]


async def get_session(kit: KitDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed before the response is sent, rolled back on error."""
    async with kit.db.session_scope() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_identity(
    kit: KitDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Identity:
    identity = kit.verifier.verify(bearer_token(authorization))
    if identity.session_id:
        # Known in memory while the process follows the sign-outs; else asked of Redis.
        revoked = kit.signed_out.signed_out(identity.session_id) if kit.signed_out is not None else None
        if revoked is None:
            try:
                revoked = bool(await kit.redis.exists(revoked_session_key(kit.settings, identity.session_id)))
            except REDIS_UNAVAILABLE:
                # Availability over a check that only shortens an already short token life; the
                # sign-outs this process had followed before Redis went away still hold.
                REVOCATION_SKIPPED.labels(kit.settings.service_name).inc()
                revoked = kit.signed_out is not None and kit.signed_out.remembered(identity.session_id)
        if revoked:
            raise Unauthorized("This session has been signed out; log in again")
    structlog.contextvars.bind_contextvars(user_id=str(identity.user_id))
    return identity


CurrentUser = Annotated[Identity, Depends(get_identity)]


async def get_admin(identity: CurrentUser) -> Identity:
    return require_admin(identity)


AdminUser = Annotated[Identity, Depends(get_admin)]

__all__ = [
    "AdminUser",
    "ClientDep",
    "ClientInfo",
    "CurrentUser",
    "KitDep",
    "SessionDep",
    "from_app_state",
    "key",
    "revoked_session_key",
]


@dataclass(frozen=True)
class ClientInfo:
    """Where a request comes from: the client a trusted proxy named, else the connecting peer (kit.proxies)."""

    ip: str
    user_agent: str | None


async def get_client(request: Request) -> ClientInfo:
    ip = request.client.host[:45] if request.client else "unknown"
    agent = request.headers.get("user-agent")
    return ClientInfo(ip=ip, user_agent=agent[:255] if agent else None)


ClientDep = Annotated[ClientInfo, Depends(get_client)]
