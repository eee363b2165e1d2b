"""The enrolment's copy of its payment order follows what payments says of it.

Payments owns the order. The saga keeps the order as payments first answered it (``created``) and
shows it on the enrolment's status; these handlers move that copy on as payments announces the
order paid, failed, expired, cancelled or refunded, in the same transaction as the saga's own reaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentFailed, PaymentOrderCancelled, PaymentRefunded, PaymentSucceeded
from services.enrollments import repository
from services.kit.events import Event

EventHandler = Callable[[Event, AsyncSession], Awaitable[None]]

# How far along its life an order is: an event never moves the copy back (a late capture still
# pays a failed or expired order; a refund follows the payment).
_RANK = {"created": 0, "failed": 1, "expired": 1, "cancelled": 1, "paid": 2, "refunded": 3}


async def _mirror(db: AsyncSession, event: Event, payload: Any, status: str, **facts: str) -> None:
    saga = await repository.saga_of_payment(db=db, enrollment_id=payload.enrollment_id, order_id=payload.order_id)
    if saga is None or saga.payment_order is None or saga.payment_order.get("order_id") != str(payload.order_id):
        return  # not this service's order, or not recorded on the saga yet
    if _RANK.get(status, 0) < _RANK.get(str(saga.payment_order.get("status")), 0):
        return  # older news than the copy already has (a paid order is never unpaid)
    saga.payment_order = {
        **saga.payment_order,
        **facts,
        "status": status,
        "status_changed_at": event.occurred_at.isoformat(),
    }


async def order_paid(event: Event, db: AsyncSession) -> None:
    """The order is paid: the enrolment's status shows it at once."""
    paid = PaymentSucceeded.model_validate(event.data)
    await _mirror(db, event, paid, "paid", payment_id=str(paid.payment_id))


async def order_failed(event: Event, db: AsyncSession) -> None:
    """The order's payment failed, or the order expired unpaid."""
    failed = PaymentFailed.model_validate(event.data)
    await _mirror(db, event, failed, "expired" if failed.reason == "expired" else "failed")


async def order_cancelled(event: Event, db: AsyncSession) -> None:
    """The order was cancelled at payments (by the saga's compensation or by its owner)."""
    await _mirror(db, event, PaymentOrderCancelled.model_validate(event.data), "cancelled")


async def order_refunded(event: Event, db: AsyncSession) -> None:
    """The order's payment was given back."""
    refunded = PaymentRefunded.model_validate(event.data)
    await _mirror(db, event, refunded, "refunded", refund_id=str(refunded.refund_id))


def in_turn(*handlers: EventHandler) -> EventHandler:
    """One handler that runs several, in order, in the consumer's one transaction."""

    async def handle(event: Event, db: AsyncSession) -> None:
        for handler in handlers:
            await handler(event, db)

    handle.__qualname__ = "+".join(h.__qualname__ for h in handlers)
    return handle
