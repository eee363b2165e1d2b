from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from services.kit.deps import from_app_state
from services.payments.service import PaymentsContext

PaymentsDep = Annotated[PaymentsContext, Depends(from_app_state("payments"))]

IdempotencyKeyHeader = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        description="Any string up to 100 characters; a retry with the same key and body gets the same result",
    ),
]


async def read_raw_body(request: Request) -> bytes:
    """The request's bytes as sent: a webhook's signature covers them, not their parsed JSON."""
    return await request.body()


RawBody = Annotated[bytes, Depends(read_raw_body)]


async def read_headers(request: Request) -> dict[str, str]:
    """The request's headers with lower-case names."""
    return {k.lower(): v for k, v in request.headers.items()}


HeadersDep = Annotated[dict[str, str], Depends(read_headers)]
