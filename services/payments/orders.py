"""Orders: opened once per idempotency key, cancelled by the enrolment saga, expired when left unpaid."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentFailed, PaymentOrderCancelled
from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import Conflict, Forbidden
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork
from services.payments import repository
from services.payments.models import IdempotencyKey, Order
from services.payments.schemas import HistoryItem, HistoryPage, OrderCreate, OrderOut
from services.payments.service import PAYMENTS, Actor, PaymentsContext, audit, authorise, find_order, order_out

EXPIRY_BATCH = 500
SYSTEM = Actor(name="system:expiry")
log = structlog.get_logger("cerebrum.payments.orders")


def fingerprint(body: dict[str, Any]) -> str:
    """A stable hash of a request body, to tell a retry from a different request under one key."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim_key(
    db: AsyncSession, actor: Actor, *, operation: str, user_id: uuid.UUID, key: str, body: dict[str, Any]
) -> uuid.UUID | None:
    """Claims an idempotency key for a new resource (returns its id), or None when an earlier request has it.

    Raises 409 when the key was used with a different body.
    """
    resource_id = uuid.uuid4()
    request_hash = fingerprint(body)
    entry = IdempotencyKey(
        operation=operation,
        user_id=user_id,
        key=key,
        request_hash=request_hash,
        resource_id=resource_id,
        created_at=utcnow(),
    )
    if await repository.claim_idempotency_key(db=db, entry=entry):
        return resource_id
    earlier = await repository.get_idempotency_key(db=db, operation=operation, user_id=user_id, key=key)
    assert earlier is not None
    if earlier.request_hash != request_hash:
        await audit(db, actor, action=operation, outcome="key_reused", reason=f"Idempotency-Key {key[:60]}")
        UnitOfWork.of(db).keep_changes()
        raise Conflict("This Idempotency-Key was already used for a different request")
    return None


async def earlier_resource(db: AsyncSession, *, operation: str, user_id: uuid.UUID, key: str) -> uuid.UUID:
    earlier = await repository.get_idempotency_key(db=db, operation=operation, user_id=user_id, key=key)
    assert earlier is not None
    return earlier.resource_id


async def open_order(
    db: AsyncSession,
    ctx: PaymentsContext,
    actor: Actor,
    *,
    order_id: uuid.UUID,
    request: OrderCreate,
    subscription_id: uuid.UUID | None = None,
) -> Order:
    """Opens the order at the provider and records it here, unpaid until its expiry."""
    notes = {"order_id": str(order_id), "user_id": str(request.user_id)}
    provider_order = await ctx.provider.create_order(
        receipt=str(order_id), amount_paise=request.amount_paise, currency=request.currency, notes=notes
    )
    now = utcnow()
    order = Order(
        id=order_id,
        user_id=request.user_id,
        enrollment_id=request.enrollment_id,
        course_id=request.course_id,
        subscription_id=subscription_id,
        amount_paise=request.amount_paise,
        currency=request.currency,
        description=request.description,
        provider=ctx.settings.payment_provider,
        provider_order_id=provider_order.provider_order_id,
        status="created",
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.order_ttl_seconds),
    )
    await repository.add_order(db=db, order=order)
    await audit(db, actor, action="create_order", outcome="created", order_id=order_id)
    return order


async def create_order(
    *,
    db: AsyncSession,
    ctx: PaymentsContext,
    identity: Identity,
    client: ClientInfo,
    request: OrderCreate,
    idempotency_key: str,
) -> tuple[OrderOut, bool]:
    """Creates an order once per idempotency key; tells whether this call created it."""
    actor = Actor.of(identity, client)
    await authorise(db, actor, identity, owner=request.user_id, action="create_order", order_id=None)
    if (request.enrollment_id is not None or request.course_id is not None) and identity.role != "service":
        # An order tied to an enrolment sets what the enrolment costs: only the enrolment saga makes
        # those (else a student could pay ₹1 for a course, or pay towards someone else's enrolment).
        await audit(
            db,
            actor,
            action="create_order",
            outcome="forbidden",
            order_id=None,
            reason="enrolment orders come from the enrolment saga",
        )
        UnitOfWork.of(db).keep_changes()
        raise Forbidden("Orders for an enrolment are made by enrolling (POST /enrollments)")
    body = request.model_dump(mode="json")
    order_id = await claim_key(
        db, actor, operation="create_order", user_id=request.user_id, key=idempotency_key, body=body
    )
    if order_id is None:
        earlier = await earlier_resource(db, operation="create_order", user_id=request.user_id, key=idempotency_key)
        await audit(db, actor, action="create_order", outcome="replayed", order_id=earlier)
        return order_out(await find_order(db, earlier), ctx), False
    order = await open_order(db, ctx, actor, order_id=order_id, request=request)
    log.info("order_created", order_id=str(order.id), amount_paise=order.amount_paise)
    return order_out(order, ctx), True


async def get_order(*, db: AsyncSession, ctx: PaymentsContext, identity: Identity, order_id: uuid.UUID) -> OrderOut:
    """Gets an order (its owner, a service or an admin)."""
    order = await find_order(db, order_id)
    await authorise(db, Actor.of(identity, None), identity, owner=order.user_id, action="read_order", order_id=order_id)
    return order_out(order, ctx)


async def close_order(db: AsyncSession, actor: Actor, order: Order, *, reason: str) -> None:
    """Cancels a locked, unpaid order, once; refuses a paid one."""
    if order.status == "paid":
        await audit(db, actor, action="cancel_order", outcome="refused", order_id=order.id, reason="already paid")
        UnitOfWork.of(db).keep_changes()
        raise Conflict("This order is already paid; refund it instead of cancelling")
    if order.status == "cancelled":
        await audit(db, actor, action="cancel_order", outcome="already_cancelled", order_id=order.id)
        return
    previous, order.status, order.updated_at = order.status, "cancelled", utcnow()
    await audit(db, actor, action="cancel_order", outcome="cancelled", order_id=order.id, reason=reason)
    cancelled = PaymentOrderCancelled(
        order_id=order.id,
        enrollment_id=order.enrollment_id,
        user_id=order.user_id,
        course_id=order.course_id,
        previous_status=previous,
        reason=reason,
    )
    await UnitOfWork.of(db).record(cancelled)


async def cancel_order(
    *, db: AsyncSession, ctx: PaymentsContext, identity: Identity, client: ClientInfo, order_id: uuid.UUID
) -> OrderOut:
    """Cancels an unpaid order; cancelling again changes nothing, cancelling a paid one is refused."""
    actor = Actor.of(identity, client)
    order = await find_order(db, order_id, lock=True)
    await authorise(db, actor, identity, owner=order.user_id, action="cancel_order", order_id=order_id)
    await close_order(db, actor, order, reason="cancelled")
    return order_out(order, ctx)


async def expire_orders(*, db: AsyncSession, now: datetime) -> int:
    """Expires orders left unpaid past their expiry; each announces payment.failed (reason expired)."""
    orders = await repository.orders_due_to_expire(db=db, now=now, limit=EXPIRY_BATCH)
    for order in orders:
        order.status, order.failure_reason, order.updated_at = "expired", "expired", now
        await audit(db, SYSTEM, action="expire_order", outcome="expired", order_id=order.id)
        expired = PaymentFailed(
            order_id=order.id, enrollment_id=order.enrollment_id, user_id=order.user_id, reason="expired"
        )
        await UnitOfWork.of(db).record(expired)
        PAYMENTS.labels("expired").inc()
    if orders:
        log.info("orders_expired", count=len(orders))
    return len(orders)


async def payment_history(
    *, db: AsyncSession, identity: Identity, client: ClientInfo, user_id: uuid.UUID, limit: int, offset: int
) -> HistoryPage:
    """Lists a student's orders and payments, newest first (the student or an admin)."""
    await authorise(db, Actor.of(identity, client), identity, owner=user_id, action="read_history", order_id=None)
    rows, total = await repository.list_user_orders(db=db, user_id=user_id, limit=limit, offset=offset)
    items = [
        HistoryItem(
            order_id=order.id,
            status=order.status,
            description=order.description,
            amount_paise=order.amount_paise,
            currency=order.currency,
            enrollment_id=order.enrollment_id,
            course_id=order.course_id,
            created_at=as_utc(order.created_at),
            payment_id=payment.id if payment else None,
            provider_payment_id=payment.provider_payment_id if payment else None,
            captured_at=as_utc(payment.captured_at) if payment else None,
            invoice_id=invoice.id if invoice else None,
            invoice_number=invoice.number if invoice else None,
        )
        for order, payment, invoice in rows
    ]
    return HistoryPage(items=items, total=total, limit=limit, offset=offset)
