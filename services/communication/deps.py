from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from services.communication import webhooks
from services.communication.service import CommunicationContext
from services.kit.deps import from_app_state
from services.kit.errors import PayloadTooLarge

MAX_WEBHOOK_BYTES = 1024 * 1024


CommunicationDep = Annotated[CommunicationContext, Depends(from_app_state("communication"))]


async def signed_body(provider: str, request: Request, ctx: CommunicationDep) -> bytes:
    """A webhook's raw body, once its signature has been checked against the provider's secret."""
    webhooks.channel_of(provider)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"Webhook bodies are at most {MAX_WEBHOOK_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"Webhook bodies are at most {MAX_WEBHOOK_BYTES} bytes")
    webhooks.verify_signature(
        secret=ctx.webhook_secrets[provider],
        header=request.headers.get(webhooks.SIGNATURE_HEADER),
        body=body,
        now=time.time(),
        tolerance=ctx.settings.webhook_tolerance_seconds,
    )
    return body


SignedBody = Annotated[bytes, Depends(signed_body)]
