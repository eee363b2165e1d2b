from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.kit.events import define_inbox, define_outbox
from services.kit.time import utcnow


class CommunicationBase(DeclarativeBase):
    """The communication service's own tables (its own schema or file)."""


class Message(CommunicationBase):
    """One message on one channel: what was rendered, where it goes, and how far it got."""

    __tablename__ = "communication_logs"
    __table_args__ = (
        Index("ix_communication_logs_user_created", "user_id", "created_at"),
        Index("ix_communication_logs_provider_id", "channel", "provider_message_id"),
        # The dispatcher only ever scans queued rows: a partial index keeps that scan small.
        Index(
            "ix_communication_logs_due",
            "channel",
            "next_attempt_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))
    template: Mapped[str | None] = mapped_column(String(80))
    template_version: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))
    # What asked for the message (an event id, an idempotency key): at most one message per key.
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(64), default="api")
    # The trace context of what queued the message (W3C headers): its sends join that trace.
    trace_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryStatus(CommunicationBase):
    """One step of a message's history: queued, retrying, sent, delivered, failed, bounced, suppressed."""

    __tablename__ = "delivery_status"

    # A sequence, not a uuid: steps taken in the same instant still read back in the order taken.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    message_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("communication_logs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Never loaded: it tells a flush that writes a new message and its first step to insert the
    # message first (a unit of work orders tables by their relationships, not their foreign keys).
    message: Mapped[Message] = relationship(lazy="raise")


class NotificationPreference(CommunicationBase):
    """A student's channels (all on until they say otherwise) and quiet hours for WhatsApp and SMS."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    whatsapp: Mapped[bool] = mapped_column(Boolean, default=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MessageTemplate(CommunicationBase):
    """One version of a template for one channel; a change is a new version, the newest is active."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("name", "channel", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Contact(CommunicationBase):
    """Where a user can be reached, learned from ``user.registered``."""

    __tablename__ = "contacts"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    name: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class OptOut(CommunicationBase):
    """An address that must not be sent to on a channel: a STOP reply, or a hard bounce."""

    __tablename__ = "opt_outs"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


OUTBOX = define_outbox(CommunicationBase.metadata)
INBOX = define_inbox(CommunicationBase.metadata)
