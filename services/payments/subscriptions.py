"""Subscriptions: a catalogue plan paid per period. The first period's order activates it when paid."""

from __future__ import annotations

import calendar
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import SubscriptionActivated, SubscriptionCancelled
from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import NotFound
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork
from services.payments import repository
from services.payments.models import Order, Subscription
from services.payments.orders import claim_key, close_order, earlier_resource, open_order
from services.payments.plans import plan_to_subscribe
from services.payments.schemas import OrderCreate, SubscriptionCreate, SubscriptionOut
from services.payments.service import Actor, PaymentsContext, audit, authorise, find_order, order_out


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time some calendar months later (the 31st becomes the month's last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _out(subscription: Subscription, order: Order, ctx: PaymentsContext) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        plan=subscription.plan,
        amount_paise=subscription.amount_paise,
        currency=subscription.currency,
        period=subscription.period,
        status=subscription.status,
        current_period_end=as_utc(subscription.current_period_end) if subscription.current_period_end else None,
        cancelled_at=as_utc(subscription.cancelled_at) if subscription.cancelled_at else None,
        order=order_out(order, ctx),
    )


async def _find(db: AsyncSession, subscription_id: uuid.UUID, *, lock: bool = False) -> Subscription:
    subscription = await repository.get_subscription(db=db, subscription_id=subscription_id, lock=lock)
    if subscription is None:
        raise NotFound("No such subscription")
    return subscription


async def create_subscription(
    *,
    db: AsyncSession,
    ctx: PaymentsContext,
    identity: Identity,
    client: ClientInfo,
    request: SubscriptionCreate,
    idempotency_key: str,
) -> tuple[SubscriptionOut, bool]:
    """Starts a subscription to a catalogue plan once per idempotency key, with the order for its first period.

    The price and period are the plan's as it is now; a retry under the same key returns the
    subscription made the first time, even if the plan has since been repriced or retired.
    """
    actor = Actor.of(identity, client)
    user_id = request.user_id or identity.user_id
    await authorise(db, actor, identity, owner=user_id, action="create_subscription", order_id=None)
    body = {**request.model_dump(mode="json"), "user_id": str(user_id)}
    subscription_id = await claim_key(
        db, actor, operation="create_subscription", user_id=user_id, key=idempotency_key, body=body
    )
    if subscription_id is None:
        earlier = await earlier_resource(db, operation="create_subscription", user_id=user_id, key=idempotency_key)
        subscription = await _find(db, earlier)
        return _out(subscription, await find_order(db, subscription.first_order_id), ctx), False
    plan = await plan_to_subscribe(db=db, code=request.plan)
    first = OrderCreate(
        user_id=user_id,
        amount_paise=plan.amount_paise,
        currency="INR",
        description=f"{plan.name} ({plan.period})"[:255],
    )
    order = await open_order(db, ctx, actor, order_id=uuid.uuid4(), request=first, subscription_id=subscription_id)
    subscription = Subscription(
        id=subscription_id,
        user_id=user_id,
        plan=plan.code,
        amount_paise=plan.amount_paise,
        currency=plan.currency,
        period=plan.period,
        status="pending",
        first_order_id=order.id,
        created_at=utcnow(),
    )
    await repository.add_subscription(db=db, subscription=subscription)
    return _out(subscription, order, ctx), True


async def cancel_subscription(
    *, db: AsyncSession, ctx: PaymentsContext, identity: Identity, client: ClientInfo, subscription_id: uuid.UUID
) -> SubscriptionOut:
    """Cancels a subscription (access runs to the end of a paid period); cancelling again changes nothing."""
    actor = Actor.of(identity, client)
    subscription = await _find(db, subscription_id, lock=True)
    order = await find_order(db, subscription.first_order_id, lock=True)
    await authorise(db, actor, identity, owner=subscription.user_id, action="cancel_subscription", order_id=order.id)
    if subscription.status == "cancelled":
        await audit(db, actor, action="cancel_subscription", outcome="already_cancelled", order_id=order.id)
        return _out(subscription, order, ctx)
    if order.status != "paid":
        await close_order(db, actor, order, reason="subscription cancelled")
    subscription.status, subscription.cancelled_at = "cancelled", utcnow()
    await audit(db, actor, action="cancel_subscription", outcome="cancelled", order_id=order.id)
    cancelled = SubscriptionCancelled(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        plan=subscription.plan,
        paid_until=subscription.current_period_end,
    )
    await UnitOfWork.of(db).record(cancelled)
    return _out(subscription, order, ctx)


async def activate_subscription(db: AsyncSession, *, order: Order, at: datetime) -> None:
    """Starts the first period of the subscription an order paid for, unless it was cancelled."""
    if order.subscription_id is None:
        return
    subscription = await _find(db, order.subscription_id, lock=True)
    if subscription.status != "pending":
        return
    months = 1 if subscription.period == "monthly" else 12
    subscription.status = "active"
    subscription.current_period_start, subscription.current_period_end = at, add_months(at, months)
    activated = SubscriptionActivated(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        plan=subscription.plan,
        period=subscription.period,
        current_period_end=subscription.current_period_end,
    )
    await UnitOfWork.of(db).record(activated)
