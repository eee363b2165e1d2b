"""Every event the enrollments service consumes, and what handles each (in the consumer's transaction)."""

from __future__ import annotations

from services.enrollments import orders, people, refunds
from services.enrollments.handlers import on_payment_failed, on_payment_succeeded
from services.kit.events.contracts import Handler


def consumed() -> dict[str, Handler]:
    """The handlers by routing key: the saga's reaction to a payment first, then the order's copy."""
    return {
        "payment.succeeded": orders.in_turn(on_payment_succeeded, orders.order_paid),
        "payment.failed": orders.in_turn(on_payment_failed, orders.order_failed),
        "payment.order_cancelled": orders.order_cancelled,
        "payment.refunded": orders.in_turn(refunds.on_payment_refunded, orders.order_refunded),
        "user.deleted": people.on_user_deleted,
    }
