"""Every query of the payments service. The audit log is only ever appended to."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.statements import cacheable, dialect_insert, insert_now, insert_unless_present, select_by
from services.payments.models import (
    AuditEntry,
    CreditNote,
    CreditNoteCounter,
    IdempotencyKey,
    Invoice,
    InvoiceCounter,
    Order,
    Payment,
    PaymentMethod,
    Refund,
    Subscription,
    SubscriptionPlan,
    WebhookEvent,
)


async def _insert_once(db: AsyncSession, model: type[Any], values: dict[str, Any], keys: list[str]) -> bool:
    """Inserts a row unless its key exists (no error, no savepoint); tells whether it was new.

    On PostgreSQL a concurrent insert of the same key waits for the first to commit, then finds it.
    """
    statement = insert_unless_present(db.get_bind().dialect.name, model.__table__, returning=keys[0], on=tuple(keys))
    return (await db.execute(statement, values)).first() is not None


async def claim_idempotency_key(*, db: AsyncSession, entry: IdempotencyKey) -> bool:
    """Records a caller's key for an operation, once; False when it was already used."""
    values = {c.name: getattr(entry, c.name) for c in IdempotencyKey.__table__.columns}
    return await _insert_once(db, IdempotencyKey, values, ["operation", "user_id", "key"])


async def get_idempotency_key(
    *, db: AsyncSession, operation: str, user_id: uuid.UUID, key: str
) -> IdempotencyKey | None:
    """Gets what an earlier request with this key created."""
    return await db.get(IdempotencyKey, (operation, user_id, key))


async def add_order(*, db: AsyncSession, order: Order) -> None:
    """Adds an order."""
    db.add(order)
    await db.flush()


async def get_order(*, db: AsyncSession, order_id: uuid.UUID, lock: bool = False) -> Order | None:
    """Gets an order by id; with lock, holds its row until the transaction ends."""
    return (await db.execute(select_by(Order, "id", lock=lock), {"key": order_id})).scalar_one_or_none()


async def get_order_by_provider_id(*, db: AsyncSession, provider_order_id: str, lock: bool = False) -> Order | None:
    """Gets an order by the provider's order id; with lock, holds its row."""
    statement = select_by(Order, "provider_order_id", lock=lock)
    return (await db.execute(statement, {"key": provider_order_id})).scalar_one_or_none()


async def orders_due_to_expire(*, db: AsyncSession, now: datetime, limit: int) -> Sequence[Order]:
    """Locks unpaid orders past their expiry (skipping any another worker holds)."""
    query = (
        select(Order)
        .where(Order.status == "created", Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await db.execute(query)).scalars().all()


async def list_user_orders(
    *, db: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[tuple[Order, Payment | None, Invoice | None]], int]:
    """Lists a user's orders newest first, each with its captured payment and invoice."""
    total = (await db.execute(select(func.count()).select_from(Order).where(Order.user_id == user_id))).scalar_one()
    rows = await db.execute(
        select(Order, Payment, Invoice)
        .outerjoin(Payment, (Payment.order_id == Order.id) & Payment.status.in_(("captured", "refunded")))
        .outerjoin(Invoice, Invoice.payment_id == Payment.id)
        .where(Order.user_id == user_id)
        .order_by(Order.created_at.desc(), Order.id)
        .limit(limit)
        .offset(offset)
    )
    return rows.tuples().all(), int(total)


async def get_payment_by_provider_id(*, db: AsyncSession, provider_payment_id: str) -> Payment | None:
    """Gets a payment by the provider's payment id."""
    statement = select_by(Payment, "provider_payment_id")
    return (await db.execute(statement, {"key": provider_payment_id})).scalar_one_or_none()


async def add_payment(*, db: AsyncSession, payment: Payment) -> None:
    """Adds a payment; a second row for one provider payment id fails here."""
    await insert_now(db, payment)


async def take_invoice_sequence(*, db: AsyncSession, financial_year: str) -> int:
    """Takes the next invoice number of a financial year, holding its counter row until commit.

    Taken in the payment's own transaction: a rollback gives the number back, so none is skipped.
    """
    return await _next_in_series(db, InvoiceCounter, financial_year)


async def take_credit_note_sequence(*, db: AsyncSession, financial_year: str) -> int:
    """Takes the next credit note number of a financial year (its own series), as invoices do theirs."""
    return await _next_in_series(db, CreditNoteCounter, financial_year)


async def _next_in_series(db: AsyncSession, model: type[Any], financial_year: str) -> int:
    """One statement: the year's counter row, made at 1 or moved on by 1 (and locked), read back."""
    statement = _counter_upsert(db.get_bind().dialect.name, model.__table__)
    return int((await db.execute(statement, {"financial_year": financial_year})).scalar_one())


@functools.cache
def _counter_upsert(dialect: str, table: Table) -> Any:
    # An ON CONFLICT statement has no cache key of its own: without one it is compiled at each use.
    return cacheable(
        dialect_insert(dialect, table)
        .values(financial_year=bindparam("financial_year"), last_sequence=1)
        .on_conflict_do_update(
            index_elements=[table.c.financial_year], set_={"last_sequence": table.c.last_sequence + 1}
        )
        .returning(table.c.last_sequence)
    )


async def captured_payment(*, db: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    """Gets the payment that paid an order (not one kept for a refund because it must not buy anything)."""
    return (await db.execute(_captured_payment(), {"order_id": order_id})).scalar_one_or_none()


@functools.cache
def _captured_payment() -> Any:
    query = select(Payment).where(Payment.order_id == bindparam("order_id"), Payment.status == "captured")
    return query.order_by(Payment.captured_at).limit(1)


async def get_refund_for_order(*, db: AsyncSession, order_id: uuid.UUID) -> Refund | None:
    """Gets an order's refund."""
    return (await db.execute(select(Refund).where(Refund.order_id == order_id))).scalar_one_or_none()


async def get_credit_note_for_refund(*, db: AsyncSession, refund_id: uuid.UUID) -> CreditNote | None:
    """Gets the credit note of a refund."""
    return (await db.execute(select(CreditNote).where(CreditNote.refund_id == refund_id))).scalar_one_or_none()


async def add_rows(*, db: AsyncSession, rows: Sequence[Any]) -> None:
    """Adds new rows in order, flushing so that constraint violations surface here."""
    for row in rows:
        db.add(row)
        await db.flush()


async def add_invoice(*, db: AsyncSession, invoice: Invoice) -> None:
    """Adds an invoice."""
    await insert_now(db, invoice)


async def get_invoice(*, db: AsyncSession, invoice_id: uuid.UUID) -> Invoice | None:
    """Gets an invoice by id."""
    return await db.get(Invoice, invoice_id)


async def get_invoice_for_payment(*, db: AsyncSession, payment_id: uuid.UUID) -> Invoice | None:
    """Gets the invoice of a payment."""
    return (await db.execute(select(Invoice).where(Invoice.payment_id == payment_id))).scalar_one_or_none()


async def add_subscription(*, db: AsyncSession, subscription: Subscription) -> None:
    """Adds a subscription."""
    db.add(subscription)
    await db.flush()


async def get_subscription(*, db: AsyncSession, subscription_id: uuid.UUID, lock: bool = False) -> Subscription | None:
    """Gets a subscription; with lock, holds its row."""
    query = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await db.execute(query)).scalar_one_or_none()


async def add_payment_method(*, db: AsyncSession, method: PaymentMethod) -> None:
    """Adds a stored payment method."""
    db.add(method)
    await db.flush()


async def list_payment_methods(*, db: AsyncSession, user_id: uuid.UUID) -> Sequence[PaymentMethod]:
    """Lists a user's stored payment methods, newest first."""
    query = select(PaymentMethod).where(PaymentMethod.user_id == user_id).order_by(PaymentMethod.created_at.desc())
    return (await db.execute(query)).scalars().all()


async def record_webhook_once(*, db: AsyncSession, event_id: str, event_type: str, at: datetime) -> bool:
    """Remembers a provider event id; False when it was seen before."""
    values = {"event_id": event_id, "event_type": event_type, "received_at": at}
    return await _insert_once(db, WebhookEvent, values, ["event_id"])


async def append_audit(*, db: AsyncSession, entry: AuditEntry) -> None:
    """Appends one row to the audit log (there is deliberately no way to change or remove one)."""
    await insert_now(db, entry)


async def add_plan_once(*, db: AsyncSession, plan: SubscriptionPlan) -> bool:
    """Adds a plan unless its code is taken; tells whether it was added."""
    values = {c.name: getattr(plan, c.name) for c in SubscriptionPlan.__table__.columns}
    return await _insert_once(db, SubscriptionPlan, values, ["code"])


async def get_plan(*, db: AsyncSession, code: str, lock: bool = False) -> SubscriptionPlan | None:
    """Gets a plan by its code, locking its row when asked."""
    query = select(SubscriptionPlan).where(SubscriptionPlan.code == code)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await db.execute(query)).scalars().first()


async def list_plans(*, db: AsyncSession, include_retired: bool) -> Sequence[SubscriptionPlan]:
    """Lists the plans by period and price, the retired ones only when asked."""
    query = select(SubscriptionPlan).order_by(
        SubscriptionPlan.period, SubscriptionPlan.amount_paise, SubscriptionPlan.code
    )
    if not include_retired:
        query = query.where(SubscriptionPlan.retired_at.is_(None))
    return (await db.execute(query)).scalars().all()
