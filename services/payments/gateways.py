"""The real payment-provider adapters, over aiohttp: Razorpay orders and Stripe payment intents.

Neither is called in tests; a missing key is refused when the adapter is first used, naming it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from services.kit.errors import DependencyUnavailable
from services.payments.keys import ProviderKeys
from services.payments.providers import (
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    WebhookKind,
    WebhookNotice,
    checkout_signature,
    hmac_hex,
    parse_razorpay_webhook,
    require,
    signatures_match,
)

log = structlog.get_logger("cerebrum.payments.gateways")


class HttpGateway:
    """One pooled aiohttp session per adapter; every failure becomes a 503 naming the provider."""

    name = "gateway"

    def __init__(self, *, base_url: str, keys: ProviderKeys, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    @property
    def key_id(self) -> str | None:
        return self.keys.key_id

    async def _call(self, method: str, path: str, *, auth: aiohttp.BasicAuth, **kw: Any) -> dict[str, Any] | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.request(method, self.base_url + path, auth=auth, **kw) as response:
                if response.status == 404:
                    return None
                if response.status >= 400:
                    log.warning("payment_provider_refused", provider=self.name, status=response.status, path=path)
                    raise DependencyUnavailable(self.name, f"{self.name} refused the call ({response.status})")
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise DependencyUnavailable(self.name) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class RazorpayGateway(HttpGateway):
    """Razorpay's Orders API with key id and key secret (HTTP basic auth)."""

    name = "razorpay"
    webhook_source = "razorpay"

    def _auth(self) -> aiohttp.BasicAuth:
        key_id = self.keys.key_id or require(None, "PAYMENT_KEY_ID", self.name)
        return aiohttp.BasicAuth(key_id, require(self.keys.key_secret, "PAYMENT_KEY_SECRET", self.name))

    async def create_order(
        self, *, receipt: str, amount_paise: int, currency: str, notes: Mapping[str, str]
    ) -> ProviderOrder:
        body = {"amount": amount_paise, "currency": currency, "receipt": receipt[:40], "notes": dict(notes)}
        reply = await self._call("POST", "/orders", auth=self._auth(), json=body)
        if reply is None or "id" not in reply:
            raise DependencyUnavailable(self.name, "Razorpay did not create the order")
        return ProviderOrder(provider_order_id=str(reply["id"]))

    async def verify_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        secret = require(self.keys.key_secret, "PAYMENT_KEY_SECRET", self.name)
        return signatures_match(checkout_signature(secret, order_id, payment_id), signature)

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = require(self.keys.webhook_secret, "PAYMENT_WEBHOOK_SECRET", self.name)
        return signatures_match(hmac_hex(secret, body), headers.get("x-razorpay-signature"))

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        return parse_razorpay_webhook(body, headers)

    async def fetch_payment(self, *, payment_id: str) -> ProviderPayment | None:
        reply = await self._call("GET", f"/payments/{payment_id}", auth=self._auth())
        if reply is None:
            return None
        return ProviderPayment(
            payment_id=str(reply["id"]),
            order_id=str(reply.get("order_id") or ""),
            amount_paise=int(reply["amount"]),
            currency=str(reply["currency"]).upper(),
            status=str(reply["status"]),
            error_description=reply.get("error_description"),
        )

    async def refund(
        self, *, payment_id: str, amount_paise: int, idempotency_key: str, notes: Mapping[str, str]
    ) -> ProviderRefund:
        # Razorpay refuses a second full refund instead of returning the first: look for it first.
        earlier = await self._call("GET", f"/payments/{payment_id}/refunds", auth=self._auth())
        for item in (earlier or {}).get("items", []):
            if item.get("receipt") == idempotency_key[:40]:
                return _razorpay_refund(item, payment_id)
        body = {"amount": amount_paise, "speed": "normal", "receipt": idempotency_key[:40], "notes": dict(notes)}
        reply = await self._call("POST", f"/payments/{payment_id}/refund", auth=self._auth(), json=body)
        if reply is None or "id" not in reply:
            raise DependencyUnavailable(self.name, "Razorpay did not refund the payment")
        return _razorpay_refund(reply, payment_id)


def _razorpay_refund(reply: dict[str, Any], payment_id: str) -> ProviderRefund:
    return ProviderRefund(
        refund_id=str(reply["id"]),
        payment_id=payment_id,
        amount_paise=int(reply.get("amount") or 0),
        status=str(reply.get("status") or "pending"),
    )


class StripeGateway(HttpGateway):
    """Stripe's PaymentIntents: the intent is the order; a browser confirmation carries no signature."""

    name = "stripe"
    webhook_source = "stripe"
    tolerance_seconds = 300

    def _auth(self) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(require(self.keys.key_secret, "PAYMENT_KEY_SECRET", self.name), "")

    async def create_order(
        self, *, receipt: str, amount_paise: int, currency: str, notes: Mapping[str, str]
    ) -> ProviderOrder:
        form = {"amount": str(amount_paise), "currency": currency.lower(), "metadata[receipt]": receipt}
        form.update({f"metadata[{k}]": v for k, v in notes.items()})
        reply = await self._call("POST", "/payment_intents", auth=self._auth(), data=form)
        if reply is None or "id" not in reply:
            raise DependencyUnavailable(self.name, "Stripe did not create the payment intent")
        return ProviderOrder(provider_order_id=str(reply["id"]))

    async def verify_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        # Stripe signs nothing for the browser: ask Stripe whether the intent really succeeded.
        payment = await self.fetch_payment(payment_id=payment_id)
        return payment is not None and payment.order_id == order_id and payment.status == "succeeded"

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = require(self.keys.webhook_secret, "PAYMENT_WEBHOOK_SECRET", self.name)
        parts = dict(p.split("=", 1) for p in headers.get("stripe-signature", "").split(",") if "=" in p)
        stamp = parts.get("t", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.tolerance_seconds:
            return False
        return signatures_match(hmac_hex(secret, stamp.encode() + b"." + body), parts.get("v1"))

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        try:
            raw = orjson.loads(body)
            intent = raw["data"]["object"]
            kinds: dict[str, WebhookKind] = {
                "payment_intent.succeeded": "captured",
                "payment_intent.payment_failed": "failed",
            }
            error = (intent.get("last_payment_error") or {}).get("message")
            return WebhookNotice(
                event_id=str(raw["id"])[:64],
                event_type=str(raw["type"])[:64],
                kind=kinds.get(str(raw["type"]), "other"),
                created_at=datetime.fromtimestamp(int(raw["created"]), UTC),
                payment=ProviderPayment(
                    payment_id=str(intent.get("latest_charge") or intent["id"]),
                    order_id=str(intent["id"]),
                    amount_paise=int(intent["amount"]),
                    currency=str(intent["currency"]).upper(),
                    status=str(intent.get("status") or ""),
                    error_description=error,
                ),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"not a Stripe event: {type(exc).__name__}") from exc

    async def fetch_payment(self, *, payment_id: str) -> ProviderPayment | None:
        reply = await self._call("GET", f"/payment_intents/{payment_id}", auth=self._auth())
        if reply is None:
            return None
        return ProviderPayment(
            payment_id=str(reply["id"]),
            order_id=str(reply["id"]),
            amount_paise=int(reply["amount"]),
            currency=str(reply["currency"]).upper(),
            status=str(reply["status"]),
            error_description=(reply.get("last_payment_error") or {}).get("message"),
        )

    async def refund(
        self, *, payment_id: str, amount_paise: int, idempotency_key: str, notes: Mapping[str, str]
    ) -> ProviderRefund:
        # Stripe answers a repeated Idempotency-Key with the refund it made the first time.
        target = "charge" if payment_id.startswith("ch_") else "payment_intent"
        form = {target: payment_id, "amount": str(amount_paise)}
        form.update({f"metadata[{k}]": v for k, v in notes.items()})
        headers = {"Idempotency-Key": idempotency_key}
        reply = await self._call("POST", "/refunds", auth=self._auth(), data=form, headers=headers)
        if reply is None or "id" not in reply:
            raise DependencyUnavailable(self.name, "Stripe did not refund the payment")
        return ProviderRefund(
            refund_id=str(reply["id"]),
            payment_id=payment_id,
            amount_paise=int(reply.get("amount") or amount_paise),
            status=str(reply.get("status") or "pending"),
        )
