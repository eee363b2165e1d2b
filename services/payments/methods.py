"""Stored payment methods: the provider's token is sealed at rest; only display details come back."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.time import as_utc, utcnow
from services.payments import repository
from services.payments.models import PaymentMethod
from services.payments.schemas import PaymentMethodCreate, PaymentMethodOut
from services.payments.service import Actor, PaymentsContext, audit

log = structlog.get_logger("cerebrum.payments.methods")


def _out(method: PaymentMethod) -> PaymentMethodOut:
    return PaymentMethodOut(
        id=method.id,
        kind=method.kind,
        brand=method.brand,
        last4=method.last4,
        expiry_month=method.expiry_month,
        expiry_year=method.expiry_year,
        created_at=as_utc(method.created_at),
    )


async def save_payment_method(
    *, db: AsyncSession, ctx: PaymentsContext, identity: Identity, client: ClientInfo, request: PaymentMethodCreate
) -> PaymentMethodOut:
    """Stores a card or UPI token for the caller, encrypted."""
    method = PaymentMethod(
        id=uuid.uuid4(),
        user_id=identity.user_id,
        kind=request.kind,
        brand=request.brand.lower(),
        last4=request.last4,
        expiry_month=request.expiry_month,
        expiry_year=request.expiry_year,
        token_ciphertext=ctx.vault.seal(request.token.get_secret_value()),
        created_at=utcnow(),
    )
    await repository.add_payment_method(db=db, method=method)
    await audit(
        db, Actor.of(identity, client), action="save_method", outcome="saved", reason=f"{method.kind} {method.id}"
    )
    log.info("payment_method_saved", method_id=str(method.id), kind=method.kind, brand=method.brand)
    return _out(method)


async def list_payment_methods(*, db: AsyncSession, identity: Identity) -> list[PaymentMethodOut]:
    """Lists the caller's stored payment methods, without their tokens."""
    return [_out(m) for m in await repository.list_payment_methods(db=db, user_id=identity.user_id)]
