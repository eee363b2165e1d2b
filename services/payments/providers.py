"""The payment-provider boundary: one interface, the offline sandbox, and Razorpay's signing rules.

The real adapters (Razorpay, Stripe) live in ``gateways.py``. The sandbox behaves like Razorpay
without a network: the same id shapes, the same HMAC rules for checkout and webhooks, and a
checkout that a test or a demo drives in place of a browser.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

from services.kit.errors import DomainError
from services.payments.keys import ProviderKeys, random_id

WebhookKind = Literal["captured", "failed", "other"]


class ProviderNotConfigured(DomainError):
    status, type, title = 503, "payment-provider-not-configured", "Payment provider not configured"


@dataclass(frozen=True)
class ProviderOrder:
    provider_order_id: str


@dataclass(frozen=True)
class ProviderPayment:
    payment_id: str
    order_id: str
    amount_paise: int
    currency: str
    status: str
    error_description: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    """Money the provider is giving back for a payment."""

    refund_id: str
    payment_id: str
    amount_paise: int
    status: str


@dataclass(frozen=True)
class WebhookNotice:
    """A provider's webhook, read into what the service acts on."""

    event_id: str
    event_type: str
    kind: WebhookKind
    created_at: datetime
    payment: ProviderPayment | None


class PaymentProvider(Protocol):
    name: str
    webhook_source: str
    """The webhook route this provider's notices arrive on (``razorpay`` or ``stripe``)."""

    @property
    def key_id(self) -> str | None: ...

    async def create_order(
        self, *, receipt: str, amount_paise: int, currency: str, notes: Mapping[str, str]
    ) -> ProviderOrder: ...

    async def verify_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool: ...

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> bool: ...

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice: ...

    async def fetch_payment(self, *, payment_id: str) -> ProviderPayment | None: ...

    async def refund(
        self, *, payment_id: str, amount_paise: int, idempotency_key: str, notes: Mapping[str, str]
    ) -> ProviderRefund:
        """Refunds a captured payment in full, once per idempotency key: asking again returns that refund."""
        ...

    async def close(self) -> None: ...


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def checkout_signature(secret: str, order_id: str, payment_id: str) -> str:
    """Razorpay's checkout signature: hex HMAC-SHA256 of ``order_id|payment_id`` with the key secret."""
    return hmac_hex(secret, f"{order_id}|{payment_id}".encode())


def signatures_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())


def require(secret: Any, setting: str, provider: str) -> str:
    """The secret's value, or a clear refusal naming the setting that is missing."""
    if secret is None or not secret.get_secret_value():
        raise ProviderNotConfigured(f"{setting} is not set; the {provider} payment provider cannot be used")
    return str(secret.get_secret_value())


def parse_razorpay_webhook(body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
    """Reads a Razorpay webhook; raises ValueError when it is not one."""
    try:
        raw = orjson.loads(body)
        event_id = str(raw.get("id") or headers.get("x-razorpay-event-id") or "")
        event_type = str(raw["event"])
        created_at = datetime.fromtimestamp(int(raw["created_at"]), UTC)
        entity = (raw.get("payload") or {}).get("payment", {}).get("entity")
        payment = None
        if entity is not None:
            payment = ProviderPayment(
                payment_id=str(entity["id"]),
                order_id=str(entity["order_id"]),
                amount_paise=int(entity["amount"]),
                currency=str(entity["currency"]).upper(),
                status=str(entity.get("status") or ""),
                error_description=entity.get("error_description"),
            )
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"not a Razorpay webhook: {type(exc).__name__}") from exc
    if not event_id or len(event_id) > 64:
        raise ValueError("not a Razorpay webhook: no usable event id")
    kinds: dict[str, WebhookKind] = {"payment.captured": "captured", "payment.failed": "failed"}
    kind = kinds.get(event_type, "other") if payment is not None else "other"
    return WebhookNotice(
        event_id=event_id, event_type=event_type[:64], kind=kind, created_at=created_at, payment=payment
    )


@dataclass(frozen=True)
class SandboxCheckout:
    """What a browser checkout hands back, and the webhook the provider would then send."""

    outcome: Literal["success", "failure"]
    razorpay_order_id: str
    razorpay_payment_id: str
    razorpay_signature: str | None
    error_description: str | None
    webhook_body: str
    webhook_headers: dict[str, str]


class SandboxProvider:
    """Razorpay offline: orders and payments in memory, signed with the configured secrets."""

    name = "sandbox"
    webhook_source = "razorpay"

    def __init__(self, keys: ProviderKeys, *, failure_rate: float = 0.0, rng: random.Random | None = None) -> None:
        self.keys = keys
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()
        self._payments: dict[str, ProviderPayment] = {}
        self._refunds: dict[str, ProviderRefund] = {}

    @property
    def key_id(self) -> str | None:
        return self.keys.key_id

    async def create_order(
        self, *, receipt: str, amount_paise: int, currency: str, notes: Mapping[str, str]
    ) -> ProviderOrder:
        return ProviderOrder(provider_order_id=random_id("order_"))

    async def verify_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        secret = require(self.keys.key_secret, "PAYMENT_KEY_SECRET", self.name)
        return signatures_match(checkout_signature(secret, order_id, payment_id), signature)

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = require(self.keys.webhook_secret, "PAYMENT_WEBHOOK_SECRET", self.name)
        return signatures_match(hmac_hex(secret, body), headers.get("x-razorpay-signature"))

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        return parse_razorpay_webhook(body, headers)

    async def fetch_payment(self, *, payment_id: str) -> ProviderPayment | None:
        return self._payments.get(payment_id)

    async def refund(
        self, *, payment_id: str, amount_paise: int, idempotency_key: str, notes: Mapping[str, str]
    ) -> ProviderRefund:
        if idempotency_key not in self._refunds:
            self._refunds[idempotency_key] = ProviderRefund(
                refund_id=random_id("rfnd_"), payment_id=payment_id, amount_paise=amount_paise, status="processed"
            )
        return self._refunds[idempotency_key]

    async def close(self) -> None:
        return None

    def checkout(
        self, *, order_id: str, amount_paise: int, currency: str, outcome: Literal["success", "failure"] | None
    ) -> SandboxCheckout:
        """Pays (or fails to pay) an order as a student's browser would; nothing is stored but the payment."""
        if outcome is None:
            outcome = "failure" if self.rng.random() < self.failure_rate else "success"
        payment_id = random_id("pay_")
        error = None if outcome == "success" else "Payment was declined by the bank (sandbox)"
        payment = ProviderPayment(
            payment_id=payment_id,
            order_id=order_id,
            amount_paise=amount_paise,
            currency=currency,
            status="captured" if outcome == "success" else "failed",
            error_description=error,
        )
        self._payments[payment_id] = payment
        signature = None
        if outcome == "success":
            signature = checkout_signature(
                require(self.keys.key_secret, "PAYMENT_KEY_SECRET", self.name), order_id, payment_id
            )
        body = self.webhook_body(payment)
        secret = require(self.keys.webhook_secret, "PAYMENT_WEBHOOK_SECRET", self.name)
        return SandboxCheckout(
            outcome=outcome,
            razorpay_order_id=order_id,
            razorpay_payment_id=payment_id,
            razorpay_signature=signature,
            error_description=error,
            webhook_body=body.decode(),
            webhook_headers={"Content-Type": "application/json", "X-Razorpay-Signature": hmac_hex(secret, body)},
        )

    @staticmethod
    def webhook_body(payment: ProviderPayment, *, created_at: int | None = None) -> bytes:
        """The JSON Razorpay posts for a captured or failed payment."""
        entity = {
            "id": payment.payment_id,
            "entity": "payment",
            "order_id": payment.order_id,
            "amount": payment.amount_paise,
            "currency": payment.currency,
            "status": payment.status,
            "method": "upi",
            "error_description": payment.error_description,
        }
        return orjson.dumps(
            {
                "entity": "event",
                "id": random_id("evt_"),
                "event": "payment.captured" if payment.status == "captured" else "payment.failed",
                "contains": ["payment"],
                "created_at": int(time.time()) if created_at is None else created_at,
                "payload": {"payment": {"entity": entity}},
            }
        )
