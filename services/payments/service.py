"""What every payments rule shares: its collaborators, the audit trail, ownership, and the views."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import at_zero, counter
from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import DomainError, Forbidden, NotFound
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork
from services.payments import repository
from services.payments.keys import TokenVault
from services.payments.models import AuditEntry, Invoice, Order, Payment
from services.payments.providers import PaymentProvider, SandboxProvider
from services.payments.schemas import OrderOut, PaymentOut
from services.payments.settings import PaymentsSettings

# At zero from start-up: PaymentFailureSpike counts the first failure only if its series exists.
PAYMENTS = at_zero(
    counter("cerebrum_payments_total", "Orders settled, by outcome (succeeded, failed, expired).", ("outcome",)),
    "succeeded",
    "failed",
    "expired",
)
REVENUE = counter("cerebrum_revenue_paise_total", "Money captured for orders, in paise.")
WEBHOOKS = counter(
    "cerebrum_payment_webhooks_total",
    "Provider webhooks by outcome (processed, duplicate, ignored, forged, stale, invalid).",
    ("outcome",),
)


class BadSignature(DomainError):
    status, type, title = 400, "bad-signature", "Signature does not match"


@dataclass(frozen=True)
class PaymentsContext:
    """What the payments rules need besides the database session."""

    settings: PaymentsSettings
    provider: PaymentProvider
    sandbox: SandboxProvider | None
    vault: TokenVault


@dataclass(frozen=True)
class Actor:
    """Who did something to an order, as the audit log names them."""

    name: str
    ip: str | None = None

    @classmethod
    def of(cls, identity: Identity, client: ClientInfo | None) -> Actor:
        return cls(name=f"{identity.role}:{identity.user_id}", ip=client.ip if client else None)


async def audit(
    db: AsyncSession,
    actor: Actor,
    *,
    action: str,
    outcome: str,
    order_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    """Appends what happened to the audit log, in the caller's transaction."""
    entry = AuditEntry(
        at=utcnow(),
        actor=actor.name[:64],
        action=action,
        outcome=outcome,
        order_id=order_id,
        reason=reason[:255] if reason else None,
        client_ip=actor.ip,
    )
    await repository.append_audit(db=db, entry=entry)


async def authorise(
    db: AsyncSession, actor: Actor, identity: Identity, *, owner: uuid.UUID, action: str, order_id: uuid.UUID | None
) -> None:
    """Refuses, and audits, a student acting on another student's payments."""
    if identity.is_admin or identity.user_id == owner:
        return
    await audit(db, actor, action=action, outcome="forbidden", order_id=order_id, reason="not the owner")
    UnitOfWork.of(db).keep_changes()
    raise Forbidden("You can only access your own payments")


async def find_order(db: AsyncSession, order_id: uuid.UUID, *, lock: bool = False) -> Order:
    order = await repository.get_order(db=db, order_id=order_id, lock=lock)
    if order is None:
        raise NotFound("No such order")
    return order


def order_out(order: Order, ctx: PaymentsContext) -> OrderOut:
    return OrderOut(
        order_id=order.id,
        provider_order_id=order.provider_order_id,
        status=order.status,
        amount_paise=order.amount_paise,
        currency=order.currency,
        user_id=order.user_id,
        enrollment_id=order.enrollment_id,
        expires_at=as_utc(order.expires_at),
        key_id=ctx.provider.key_id,
    )


def payment_out(payment: Payment, order: Order, invoice: Invoice | None) -> PaymentOut:
    return PaymentOut(
        payment_id=payment.id,
        order_id=order.id,
        provider_payment_id=payment.provider_payment_id,
        status=payment.status,
        order_status=order.status,
        amount_paise=payment.amount_paise,
        currency=payment.currency,
        captured_at=as_utc(payment.captured_at),
        invoice_id=invoice.id if invoice else None,
        invoice_number=invoice.number if invoice else None,
    )
