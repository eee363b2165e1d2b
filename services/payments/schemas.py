from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator, model_validator

from services.kit.schemas import StrictInput

MAX_AMOUNT_PAISE = 10_000_000_00  # ₹1 crore: far above any course or plan
_PAN_LIKE = re.compile(r"^[\d \-]{12,23}$")


class OrderCreate(StrictInput):
    user_id: uuid.UUID
    enrollment_id: uuid.UUID | None = None
    course_id: uuid.UUID | None = None
    amount_paise: int = Field(gt=0, le=MAX_AMOUNT_PAISE)
    currency: Literal["INR"] = "INR"
    description: str = Field(min_length=1, max_length=255)


class OrderOut(BaseModel):
    order_id: uuid.UUID
    provider_order_id: str
    status: str
    amount_paise: int
    currency: str
    user_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    expires_at: datetime
    key_id: str | None


class VerifyRequest(StrictInput):
    razorpay_order_id: str = Field(min_length=1, max_length=64)
    razorpay_payment_id: str = Field(min_length=1, max_length=64)
    razorpay_signature: str = Field(min_length=1, max_length=256)


class PaymentOut(BaseModel):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider_payment_id: str
    status: str
    order_status: str
    amount_paise: int
    currency: str
    captured_at: datetime
    invoice_id: uuid.UUID | None
    invoice_number: str | None


class WebhookAck(BaseModel):
    status: Literal["processed", "duplicate", "ignored"]


class SandboxCheckoutRequest(StrictInput):
    order_id: uuid.UUID
    outcome: Literal["success", "failure"] | None = Field(
        default=None, description="left out: the sandbox's configured failure rate decides"
    )


class SandboxWebhook(BaseModel):
    url: str
    headers: dict[str, str]
    body: str


class SandboxCheckoutOut(BaseModel):
    outcome: Literal["success", "failure"]
    razorpay_order_id: str
    razorpay_payment_id: str
    razorpay_signature: str | None
    error_description: str | None
    webhook: SandboxWebhook


class HistoryItem(BaseModel):
    order_id: uuid.UUID
    status: str
    description: str
    amount_paise: int
    currency: str
    enrollment_id: uuid.UUID | None
    course_id: uuid.UUID | None
    created_at: datetime
    payment_id: uuid.UUID | None
    provider_payment_id: str | None
    captured_at: datetime | None
    invoice_id: uuid.UUID | None
    invoice_number: str | None


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    total: int
    limit: int
    offset: int


class InvoiceOut(BaseModel):
    id: uuid.UUID
    number: str
    financial_year: str
    order_id: uuid.UUID
    payment_id: uuid.UUID
    user_id: uuid.UUID
    description: str
    total_paise: int
    base_paise: int
    gst_paise: int
    gst_rate_percent: int
    currency: str
    issued_at: datetime


class RefundRequest(StrictInput):
    reason: str = Field(min_length=1, max_length=200, description="why the money goes back, e.g. cancelled_by_student")


class CreditNoteOut(BaseModel):
    id: uuid.UUID
    number: str
    financial_year: str
    invoice_id: uuid.UUID
    invoice_number: str
    total_paise: int
    base_paise: int
    gst_paise: int
    gst_rate_percent: int
    currency: str
    issued_at: datetime


class RefundOut(BaseModel):
    refund_id: uuid.UUID
    order_id: uuid.UUID
    payment_id: uuid.UUID
    order_status: str
    amount_paise: int
    currency: str
    provider_refund_id: str
    provider_status: str
    reason: str
    refunded_at: datetime
    credit_note: CreditNoteOut


PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,59}$")]
Period = Literal["monthly", "yearly"]


class SubscriptionCreate(StrictInput):
    """Names a plan; its price and period are the catalogue's, so a body with an amount is refused."""

    user_id: uuid.UUID | None = Field(default=None, description="left out: the caller")
    plan: PlanCode = Field(description="A plan's code from GET /subscriptions/plans, e.g. neet-monthly")


class PlanCreate(StrictInput):
    code: PlanCode
    name: str = Field(min_length=1, max_length=120)
    amount_paise: int = Field(gt=0, le=MAX_AMOUNT_PAISE, description="GST-inclusive price per period")
    period: Period


class PlanUpdate(StrictInput):
    """New values for a plan; subscriptions already made keep the price they were made at."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    amount_paise: int | None = Field(default=None, gt=0, le=MAX_AMOUNT_PAISE)
    period: Period | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> PlanUpdate:
        if self.name is None and self.amount_paise is None and self.period is None:
            raise ValueError("send name, amount_paise or period")
        return self


class PlanOut(BaseModel):
    code: str
    name: str
    amount_paise: int
    currency: str
    period: str
    active: bool
    retired_at: datetime | None


class SubscriptionOut(BaseModel):
    subscription_id: uuid.UUID
    user_id: uuid.UUID
    plan: str
    amount_paise: int
    currency: str
    period: str
    status: str
    current_period_end: datetime | None
    cancelled_at: datetime | None
    order: OrderOut


class PaymentMethodCreate(StrictInput):
    kind: Literal["card", "upi"]
    token: SecretStr = Field(min_length=4, max_length=255, description="the provider's token, never a card number")
    brand: str = Field(min_length=1, max_length=32)
    last4: str | None = Field(default=None, pattern=r"^\d{4}$")
    expiry_month: int | None = Field(default=None, ge=1, le=12)
    expiry_year: int | None = Field(default=None, ge=2000, le=2100)

    @field_validator("token")
    @classmethod
    def _not_a_card_number(cls, token: SecretStr) -> SecretStr:
        if _PAN_LIKE.match(token.get_secret_value().strip()):
            raise ValueError("send the provider's token for the card, never the card number")
        return token

    @model_validator(mode="after")
    def _card_details(self) -> PaymentMethodCreate:
        card_fields = (self.last4, self.expiry_month, self.expiry_year)
        if self.kind == "card" and None in card_fields:
            raise ValueError("a card needs last4, expiry_month and expiry_year")
        if self.kind == "upi" and (self.expiry_month or self.expiry_year):
            raise ValueError("a UPI handle has no expiry")
        return self


class PaymentMethodOut(BaseModel):
    id: uuid.UUID
    kind: str
    brand: str
    last4: str | None
    expiry_month: int | None
    expiry_year: int | None
    created_at: datetime
