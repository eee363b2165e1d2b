from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from services.communication import webhooks
from services.communication.service import CommunicationContext
from services.kit.deps import from_app_state

CommunicationDep = Annotated[CommunicationContext, Depends(from_app_state("communication"))]


async def signed_body(provider: str, request: Request, ctx: CommunicationDep) -> bytes:
    """A webhook's raw body (at most ``max_body_bytes``), once its signature is checked with the provider's secret."""
    webhooks.channel_of(provider)
    body = await request.body()
    webhooks.verify_signature(
        secret=ctx.webhook_secrets[provider],
        header=request.headers.get(webhooks.SIGNATURE_HEADER),
        body=body,
        now=time.time(),
        tolerance=ctx.settings.webhook_tolerance_seconds,
    )
    return body


SignedBody = Annotated[bytes, Depends(signed_body)]
