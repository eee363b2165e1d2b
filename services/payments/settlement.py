"""Settling orders: the browser's signed verification and the provider's webhooks, in any order.

Every path to "paid" locks the order row first, so verify and webhooks for one order take turns;
a provider payment id is recorded once, and ``payment.succeeded`` is written only by the one
transition to paid, in the same transaction (at most one per order, whatever arrives twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentFailed, PaymentSucceeded
from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import DomainError, NotFound
from services.kit.time import utcnow
from services.kit.uow import UnitOfWork
from services.payments import repository
from services.payments.billing import issue_invoice
from services.payments.models import Invoice, Order, Payment
from services.payments.providers import WebhookNotice
from services.payments.schemas import PaymentOut, VerifyRequest, WebhookAck
from services.payments.service import (
    PAYMENTS,
    REVENUE,
    WEBHOOKS,
    Actor,
    BadSignature,
    PaymentsContext,
    audit,
    authorise,
    payment_out,
)
from services.payments.subscriptions import activate_subscription

log = structlog.get_logger("cerebrum.payments.settlement")


class BadWebhook(DomainError):
    status, type, title = 400, "bad-webhook", "Webhook refused"


async def capture(
    db: AsyncSession,
    ctx: PaymentsContext,
    actor: Actor,
    *,
    order: Order,
    provider_payment_id: str,
    amount_paise: int,
    currency: str,
    action: str,
) -> tuple[Payment, Invoice | None]:
    """Records a captured payment on a locked order, once per payment id; pays the order once."""
    existing = await repository.get_payment_by_provider_id(db=db, provider_payment_id=provider_payment_id)
    if existing is not None:
        await audit(db, actor, action=action, outcome="duplicate", order_id=order.id, reason=provider_payment_id)
        return existing, await repository.get_invoice_for_payment(db=db, payment_id=existing.id)
    now = utcnow()
    problem = None
    if order.status in ("paid", "cancelled"):
        problem = f"captured on a {order.status} order"
    elif (amount_paise, currency) != (order.amount_paise, order.currency):
        problem = f"captured {amount_paise} {currency} for an order of {order.amount_paise} {order.currency}"
    payment = Payment(
        id=uuid.uuid4(),
        order_id=order.id,
        user_id=order.user_id,
        provider_payment_id=provider_payment_id,
        amount_paise=amount_paise,
        currency=currency,
        status="refund_due" if problem else "captured",
        captured_at=now,
    )
    await repository.add_payment(db=db, payment=payment)
    if problem:
        # The money has moved but must not buy anything: kept for an admin to refund.
        await audit(db, actor, action=action, outcome="refund_due", order_id=order.id, reason=problem)
        log.warning("payment_refund_due", order_id=str(order.id), payment_id=provider_payment_id, reason=problem)
        return payment, None
    order.status, order.failure_reason, order.updated_at = "paid", None, now
    invoice = await issue_invoice(db, ctx, order=order, payment=payment, at=now)
    await activate_subscription(db, order=order, at=now)
    succeeded = PaymentSucceeded(
        payment_id=payment.id,
        order_id=order.id,
        enrollment_id=order.enrollment_id,
        user_id=order.user_id,
        course_id=order.course_id,
        amount_paise=amount_paise,
        currency=currency,
    )
    await UnitOfWork.of(db).record(succeeded)
    PAYMENTS.labels("succeeded").inc()
    REVENUE.inc(amount_paise)
    await audit(db, actor, action=action, outcome="paid", order_id=order.id, reason=provider_payment_id)
    log.info("payment_succeeded", order_id=str(order.id), amount_paise=amount_paise, via=action)
    return payment, invoice


async def fail(db: AsyncSession, actor: Actor, *, order: Order, provider_payment_id: str, reason: str) -> None:
    """Marks a locked, unpaid order failed and announces it once; a paid order stays paid."""
    if order.status != "created":
        outcome = "ignored_paid" if order.status == "paid" else f"already_{order.status}"
        await audit(db, actor, action="webhook", outcome=outcome, order_id=order.id, reason=provider_payment_id)
        return
    order.status, order.failure_reason, order.updated_at = "failed", reason[:255], utcnow()
    failed = PaymentFailed(order_id=order.id, enrollment_id=order.enrollment_id, user_id=order.user_id, reason=reason)
    await UnitOfWork.of(db).record(failed)
    PAYMENTS.labels("failed").inc()
    await audit(
        db, actor, action="webhook", outcome="failed", order_id=order.id, reason=f"{provider_payment_id}: {reason}"
    )


async def verify_payment(
    *, db: AsyncSession, ctx: PaymentsContext, identity: Identity, client: ClientInfo, request: VerifyRequest
) -> PaymentOut:
    """Checks a checkout's signature and pays the order; verifying again returns the same payment."""
    actor = Actor.of(identity, client)
    order = await repository.get_order_by_provider_id(db=db, provider_order_id=request.razorpay_order_id, lock=True)
    valid = await ctx.provider.verify_signature(
        order_id=request.razorpay_order_id, payment_id=request.razorpay_payment_id, signature=request.razorpay_signature
    )
    if not valid:
        reason = f"bad signature for {request.razorpay_payment_id}"
        await audit(
            db, actor, action="verify", outcome="bad_signature", order_id=order.id if order else None, reason=reason
        )
        log.warning("payment_signature_refused", provider_order_id=request.razorpay_order_id)
        UnitOfWork.of(db).keep_changes()
        raise BadSignature("The payment signature does not match this order and payment")
    if order is None:
        await audit(db, actor, action="verify", outcome="unknown_order", reason=request.razorpay_order_id)
        UnitOfWork.of(db).keep_changes()
        raise NotFound("No such order")
    await authorise(db, actor, identity, owner=order.user_id, action="verify", order_id=order.id)
    payment, invoice = await capture(
        db,
        ctx,
        actor,
        order=order,
        provider_payment_id=request.razorpay_payment_id,
        amount_paise=order.amount_paise,
        currency=order.currency,
        action="verify",
    )
    return payment_out(payment, order, invoice)


async def _refuse_webhook(db: AsyncSession, actor: Actor, *, outcome: str, reason: str, detail: str) -> DomainError:
    await audit(db, actor, action="webhook", outcome=outcome, reason=reason)
    WEBHOOKS.labels(outcome).inc()
    log.warning("payment_webhook_refused", outcome=outcome, reason=reason)
    UnitOfWork.of(db).keep_changes()
    return BadWebhook(detail)


async def receive_webhook(
    *,
    db: AsyncSession,
    ctx: PaymentsContext,
    client: ClientInfo,
    source: str,
    body: bytes,
    headers: Mapping[str, str],
) -> WebhookAck:
    """Acts on a signed, fresh, first-seen provider webhook; anything else is refused or ignored, and audited."""
    if source != ctx.provider.webhook_source:
        raise NotFound(f"This service takes {ctx.provider.webhook_source} webhooks only")
    actor = Actor(name=f"provider:{source}", ip=client.ip)
    if not ctx.provider.verify_webhook(body=body, headers=headers):
        raise await _refuse_webhook(
            db,
            actor,
            outcome="forged",
            reason="signature does not match",
            detail="The webhook signature does not match",
        )
    try:
        notice = ctx.provider.parse_webhook(body=body, headers=headers)
    except ValueError as exc:
        raise await _refuse_webhook(db, actor, outcome="invalid", reason=str(exc), detail="Not a webhook body") from exc
    now = utcnow()
    window = timedelta(seconds=ctx.settings.webhook_replay_window_seconds)
    if abs(now - notice.created_at) > window:
        raise await _refuse_webhook(
            db,
            actor,
            outcome="stale",
            reason=f"{notice.event_id} created {notice.created_at.isoformat()}",
            detail="The webhook is older than the replay window",
        )
    if not await repository.record_webhook_once(db=db, event_id=notice.event_id, event_type=notice.event_type, at=now):
        await audit(db, actor, action="webhook", outcome="duplicate", reason=notice.event_id)
        WEBHOOKS.labels("duplicate").inc()
        return WebhookAck(status="duplicate")
    return await _act_on(db, ctx, actor, notice)


async def _act_on(db: AsyncSession, ctx: PaymentsContext, actor: Actor, notice: WebhookNotice) -> WebhookAck:
    payment = notice.payment
    order = None
    if payment is not None and notice.kind != "other":
        order = await repository.get_order_by_provider_id(db=db, provider_order_id=payment.order_id, lock=True)
    if payment is None or order is None:
        await audit(db, actor, action="webhook", outcome="ignored", reason=f"{notice.event_type} {notice.event_id}")
        WEBHOOKS.labels("ignored").inc()
        return WebhookAck(status="ignored")
    if notice.kind == "captured":
        await capture(
            db,
            ctx,
            actor,
            order=order,
            provider_payment_id=payment.payment_id,
            amount_paise=payment.amount_paise,
            currency=payment.currency,
            action="webhook",
        )
    else:
        reason = payment.error_description or "payment failed"
        await fail(db, actor, order=order, provider_payment_id=payment.payment_id, reason=reason)
    WEBHOOKS.labels("processed").inc()
    return WebhookAck(status="processed")
