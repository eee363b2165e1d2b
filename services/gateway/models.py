from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.time import utcnow


class GatewayBase(DeclarativeBase):
    """The gateway's own tables."""


class TrafficWeight(GatewayBase):
    """The share of a prefix's traffic sent to the extracted service; the rest goes to the monolith."""

    __tablename__ = "traffic_weights"

    prefix: Mapped[str] = mapped_column(String(40), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ShadowShare(GatewayBase):
    """The share of a prefix's safe requests also sent, as shadow traffic, to the side that did not serve them."""

    __tablename__ = "shadow_shares"

    prefix: Mapped[str] = mapped_column(String(40), primary_key=True)
    percent: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
