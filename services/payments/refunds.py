"""Refunds: a paid order's money given back in full, within the academy's refund window.

The order row is locked first, so two requests for one order take turns; the second finds the
refund the first made and answers with it. The provider is asked with the order's id as its
idempotency key, so a retry after a lost answer never refunds twice. The refund, the credit note
against the invoice, the order's new status, the audit row and ``payment.refunded`` are written
in one transaction. A refusal (outside the window, not paid, not allowed) changes nothing but the
audit log.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import at_zero, counter
from services.contracts.events import PaymentRefunded
from services.contracts.problems import REFUND_WINDOW_CLOSED
from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import Conflict, DomainError, Forbidden
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork
from services.payments import repository
from services.payments.billing import credit_note_out, issue_credit_note
from services.payments.models import CreditNote, Invoice, Order, Refund
from services.payments.schemas import RefundOut, RefundRequest
from services.payments.service import Actor, PaymentsContext, audit, find_order

log = structlog.get_logger("cerebrum.payments.refunds")
REFUNDS = at_zero(
    counter("cerebrum_refunds_total", "Refund requests by outcome (refunded, window_closed, refused).", ("outcome",)),
    "refunded",
    "window_closed",
    "refused",
)
REFUNDED = counter("cerebrum_refunded_paise_total", "Money given back to students, in paise.")


class RefundWindowClosed(DomainError):
    status, type, title = 409, REFUND_WINDOW_CLOSED, "Refund window closed"


class NotRefundable(Conflict):
    type, title = "order-not-refundable", "Order not refundable"


def refund_out(refund: Refund, order: Order, note: CreditNote, invoice: Invoice) -> RefundOut:
    return RefundOut(
        refund_id=refund.id,
        order_id=order.id,
        payment_id=refund.payment_id,
        order_status=order.status,
        amount_paise=refund.amount_paise,
        currency=refund.currency,
        provider_refund_id=refund.provider_refund_id,
        provider_status=refund.provider_status,
        reason=refund.reason,
        refunded_at=as_utc(refund.created_at),
        credit_note=credit_note_out(note, invoice),
    )


async def _refuse(
    db: AsyncSession, actor: Actor, order: Order, *, outcome: str, reason: str, error: DomainError
) -> NoReturn:
    await audit(db, actor, action="refund", outcome=outcome, order_id=order.id, reason=reason)
    REFUNDS.labels("window_closed" if outcome == "window_closed" else "refused").inc()
    UnitOfWork.of(db).keep_changes()
    raise error


async def _earlier(db: AsyncSession, order: Order, refund: Refund) -> RefundOut:
    note = await repository.get_credit_note_for_refund(db=db, refund_id=refund.id)
    invoice = await repository.get_invoice_for_payment(db=db, payment_id=refund.payment_id)
    assert note is not None and invoice is not None
    return refund_out(refund, order, note, invoice)


async def refund_order(
    *,
    db: AsyncSession,
    ctx: PaymentsContext,
    identity: Identity,
    client: ClientInfo,
    order_id: uuid.UUID,
    request: RefundRequest,
) -> RefundOut:
    """Refunds a paid order in full (services and admins); asking again returns the same refund."""
    actor = Actor.of(identity, client)
    order = await find_order(db, order_id, lock=True)
    if identity.role not in ("service", "admin"):
        # A student's refund comes with giving the place up: cancelling the enrolment asks for it.
        await _refuse(
            db,
            actor,
            order,
            outcome="forbidden",
            reason="refunds come from cancelling the enrolment",
            error=Forbidden("Cancel the enrolment to get a refund (DELETE /enrollments/{id})"),
        )
    earlier = await repository.get_refund_for_order(db=db, order_id=order_id)
    if earlier is not None:
        await audit(db, actor, action="refund", outcome="replayed", order_id=order_id)
        return await _earlier(db, order, earlier)
    payment = await repository.captured_payment(db=db, order_id=order_id) if order.status == "paid" else None
    invoice = await repository.get_invoice_for_payment(db=db, payment_id=payment.id) if payment else None
    if payment is None or invoice is None:
        await _refuse(
            db,
            actor,
            order,
            outcome="refused",
            reason=f"order is {order.status}",
            error=NotRefundable(f"Only a paid order can be refunded; this one is {order.status}"),
        )
    assert payment is not None and invoice is not None
    now = utcnow()
    days = ctx.settings.refund_window_days
    refundable_until = as_utc(payment.captured_at) + timedelta(days=days)
    if now > refundable_until:
        paid_on = as_utc(payment.captured_at).date().isoformat()
        await _refuse(
            db,
            actor,
            order,
            outcome="window_closed",
            reason=f"paid {paid_on}, refundable until {refundable_until.isoformat()}",
            error=RefundWindowClosed(
                f"Refunds are given within {days} days of payment; this one was paid on {paid_on}",
                paid_at=as_utc(payment.captured_at).isoformat(),
                refundable_until=refundable_until.isoformat(),
            ),
        )
    given = await ctx.provider.refund(
        payment_id=payment.provider_payment_id,
        amount_paise=payment.amount_paise,
        idempotency_key=f"refund-{order.id}",
        notes={"order_id": str(order.id), "reason": request.reason[:100]},
    )
    refund = Refund(
        id=uuid.uuid4(),
        order_id=order.id,
        payment_id=payment.id,
        user_id=order.user_id,
        amount_paise=payment.amount_paise,
        currency=payment.currency,
        provider_refund_id=given.refund_id[:64],
        provider_status=given.status[:16],
        reason=request.reason,
        created_at=now,
    )
    await repository.add_rows(db=db, rows=[refund])
    note = await issue_credit_note(db, ctx, invoice=invoice, refund=refund, at=now)
    payment.status = "refunded"
    order.status, order.updated_at = "refunded", now
    reason = f"{note.number}: {request.reason}"
    await audit(db, actor, action="refund", outcome="refunded", order_id=order.id, reason=reason)
    refunded = PaymentRefunded(
        refund_id=refund.id,
        order_id=order.id,
        payment_id=payment.id,
        enrollment_id=order.enrollment_id,
        user_id=order.user_id,
        course_id=order.course_id,
        amount_paise=refund.amount_paise,
        currency=refund.currency,
        description=order.description,
        credit_note_number=note.number,
        reason=request.reason,
        refunded_at=now,
    )
    await UnitOfWork.of(db).record(refunded)
    REFUNDS.labels("refunded").inc()
    REFUNDED.inc(refund.amount_paise)
    log.info("payment_refunded", order_id=str(order.id), amount_paise=refund.amount_paise, credit_note=note.number)
    return refund_out(refund, order, note, invoice)
