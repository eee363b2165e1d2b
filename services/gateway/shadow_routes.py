"""The gateway's shadow-traffic administration: shares per prefix, and what the mirrors have shown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from services.gateway.routing import ROUTES
from services.gateway.shadow import ShadowMirror
from services.kit.deps import AdminUser, from_app_state
from services.kit.errors import NotFound
from services.kit.schemas import StrictInput

router = APIRouter(tags=["gateway"])
MirrorDep = Annotated[ShadowMirror, Depends(from_app_state("shadow"))]


class ShadowShareChange(StrictInput):
    percent: int = Field(
        ge=0, le=100, description="Percent of the prefix's safe requests also sent to the side that did not serve them."
    )


@router.get("/gateway/shadow")
async def shares(mirror: MirrorDep, _admin: AdminUser) -> dict[str, Any]:
    """Shows each prefix's share of requests mirrored as shadow traffic."""
    await mirror.shares.refresh(force=True)
    return {"shares": mirror.shares.current(sorted(ROUTES))}


@router.put("/gateway/shadow/{prefix}")
async def set_share(prefix: str, body: ShadowShareChange, mirror: MirrorDep, admin: AdminUser) -> dict[str, Any]:
    """Sets a prefix's share of safe requests mirrored to the other side (0 to 100)."""
    if prefix not in ROUTES:
        raise NotFound(f"No route prefix {prefix!r}; known: {', '.join(sorted(ROUTES))}")
    percent = await mirror.shares.set_percent(prefix=prefix, percent=body.percent, admin=admin.user_id)
    return {"prefix": prefix, "percent": percent}


@router.get("/gateway/shadow/report")
async def report(request: Request, mirror: MirrorDep, _admin: AdminUser) -> dict[str, Any]:
    """Per route: requests mirrored, how often the answers differed beyond noise, and the fields that did."""
    await mirror.shares.refresh(force=True)
    return {"shares": mirror.shares.current(sorted(ROUTES)), **mirror.ledger.report()}
