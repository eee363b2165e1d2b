from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.events import define_outbox
from services.kit.time import utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class PaymentsBase(DeclarativeBase):
    """The payments service's own tables (its own schema or file)."""


class Order(PaymentsBase):
    """What a student is asked to pay, mirrored by one order at the provider.

    Status: created → paid (→ refunded), or created → failed / expired / cancelled; a late capture
    still pays a failed or expired order (the money has moved), never a cancelled one.
    """

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_status_expires_at", "status", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    enrollment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(16))
    provider_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Payment(PaymentsBase):
    """Money captured by the provider for an order; one row per provider payment id."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    provider_payment_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invoice(PaymentsBase):
    """A tax invoice for one payment, numbered without gaps within its financial year."""

    __tablename__ = "billing_history"
    __table_args__ = (UniqueConstraint("financial_year", "sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    financial_year: Mapped[str] = mapped_column(String(7))
    sequence: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id"))
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payments.id"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    description: Mapped[str] = mapped_column(String(255))
    total_paise: Mapped[int] = mapped_column(BigInteger)
    base_paise: Mapped[int] = mapped_column(BigInteger)
    gst_paise: Mapped[int] = mapped_column(BigInteger)
    gst_rate_percent: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvoiceCounter(PaymentsBase):
    """The last invoice number given out in a financial year; locked while the next is taken."""

    __tablename__ = "invoice_counters"

    financial_year: Mapped[str] = mapped_column(String(7), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(Integer)


class Refund(PaymentsBase):
    """A captured payment given back in full; at most one per order."""

    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id"), unique=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payments.id"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider_refund_id: Mapped[str] = mapped_column(String(64))
    provider_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditNote(PaymentsBase):
    """A GST credit note cancelling an invoice whose payment was refunded; its own gapless series per year."""

    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("financial_year", "sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    financial_year: Mapped[str] = mapped_column(String(7))
    sequence: Mapped[int] = mapped_column(Integer)
    invoice_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("billing_history.id"), unique=True)
    refund_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("refunds.id"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    total_paise: Mapped[int] = mapped_column(BigInteger)
    base_paise: Mapped[int] = mapped_column(BigInteger)
    gst_paise: Mapped[int] = mapped_column(BigInteger)
    gst_rate_percent: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditNoteCounter(PaymentsBase):
    """The last credit note number given out in a financial year; locked while the next is taken."""

    __tablename__ = "credit_note_counters"

    financial_year: Mapped[str] = mapped_column(String(7), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(Integer)


class Subscription(PaymentsBase):
    """A plan paid per period; active once its first order is paid."""

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    plan: Mapped[str] = mapped_column(String(60))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    first_order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    current_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SubscriptionPlan(PaymentsBase):
    """A plan students may subscribe to: its price and period are set here by admins, never by a student.

    A retired plan takes no new subscriptions; those already made keep the price they were made at.
    """

    __tablename__ = "subscription_plans"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PaymentMethod(PaymentsBase):
    """A provider token for a card or UPI handle, encrypted; only display details are in the clear."""

    __tablename__ = "payment_methods"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str | None] = mapped_column(String(4))
    expiry_month: Mapped[int | None] = mapped_column(Integer)
    expiry_year: Mapped[int | None] = mapped_column(Integer)
    token_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(PaymentsBase):
    """One thing that happened to money or to an order, good or refused. Rows are only ever added."""

    __tablename__ = "payment_audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    reason: Mapped[str | None] = mapped_column(String(255))
    client_ip: Mapped[str | None] = mapped_column(String(45))


class WebhookEvent(PaymentsBase):
    """A provider event id already handled: a replay of it changes nothing."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(PaymentsBase):
    """A caller's Idempotency-Key, the request it came with, and what that request created."""

    __tablename__ = "idempotency_keys"

    operation: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


OUTBOX = define_outbox(PaymentsBase.metadata)
