"""The enrolment's copy of its payment order follows what payments says of it.

Payments owns the order. The saga keeps the order as payments first answered it (``created``) and
shows it on the enrolment's status; these handlers move that copy on as payments announces the
order paid, failed, expired or cancelled, in the same transaction as the saga's own reaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentFailed, PaymentOrderCancelled, PaymentSucceeded
from services.enrollments import repository
from services.kit.events import Event

EventHandler = Callable[[Event, AsyncSession], Awaitable[None]]


async def _mirror(db: AsyncSession, event: Event, payload: Any, status: str, **facts: str) -> None:
    saga = await repository.saga_of_payment(db=db, enrollment_id=payload.enrollment_id, order_id=payload.order_id)
    if saga is None or saga.payment_order is None or saga.payment_order.get("order_id") != str(payload.order_id):
        return  # not this service's order, or not recorded on the saga yet
    if saga.payment_order.get("status") == "paid" and status != "paid":
        return  # payments never unpays an order: this event is older than the payment
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


def in_turn(*handlers: EventHandler) -> EventHandler:
    """One handler that runs several, in order, in the consumer's one transaction."""

    async def handle(event: Event, db: AsyncSession) -> None:
        for handler in handlers:
            await handler(event, db)

    handle.__qualname__ = "+".join(h.__qualname__ for h in handlers)
    return handle
