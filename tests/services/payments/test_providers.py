"""The provider boundary offline: Razorpay's signing rules, the real adapters' refusals, and the secrets."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from services.payments.app import build_provider
from services.payments.gateways import RazorpayGateway, StripeGateway
from services.payments.keys import ProviderKeys, TokenVault, payment_methods_key, provider_keys
from services.payments.providers import ProviderNotConfigured, SandboxProvider, checkout_signature
from services.payments.settings import PaymentsSettings

KEYS = ProviderKeys(key_id="rzp_test_x", key_secret=SecretStr("key-secret"), webhook_secret=SecretStr("hook-secret"))


def test_the_checkout_signature_is_razorpays() -> None:
    expected = hmac.new(b"key-secret", b"order_A|pay_B", hashlib.sha256).hexdigest()
    assert checkout_signature("key-secret", "order_A", "pay_B") == expected


async def test_the_sandbox_signs_like_razorpay_and_can_be_set_to_fail() -> None:
    sandbox = SandboxProvider(KEYS, failure_rate=1.0)
    order = await sandbox.create_order(receipt="r", amount_paise=100, currency="INR", notes={})
    assert re.fullmatch(r"order_[A-Za-z0-9]{14}", order.provider_order_id)
    paid = sandbox.checkout(order_id=order.provider_order_id, amount_paise=100, currency="INR", outcome="success")
    assert re.fullmatch(r"pay_[A-Za-z0-9]{14}", paid.razorpay_payment_id)
    assert paid.razorpay_signature is not None
    assert await sandbox.verify_signature(
        order_id=order.provider_order_id, payment_id=paid.razorpay_payment_id, signature=paid.razorpay_signature
    )
    body = paid.webhook_body.encode()
    signature = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert paid.webhook_headers["X-Razorpay-Signature"] == signature
    assert sandbox.verify_webhook(body=body, headers={"x-razorpay-signature": signature})
    assert not sandbox.verify_webhook(body=body + b" ", headers={"x-razorpay-signature": signature})
    notice = sandbox.parse_webhook(body=body, headers={})
    assert (notice.kind, notice.payment and notice.payment.amount_paise) == ("captured", 100)
    assert (await sandbox.fetch_payment(payment_id=paid.razorpay_payment_id)) is not None
    assert sandbox.checkout(order_id="order_x", amount_paise=1, currency="INR", outcome=None).outcome == "failure"


async def test_a_real_adapter_without_keys_says_which_key_is_missing() -> None:
    empty = ProviderKeys(key_id=None, key_secret=None, webhook_secret=None)
    razorpay = RazorpayGateway(base_url="http://127.0.0.1:9", keys=empty, timeout_seconds=1)
    with pytest.raises(ProviderNotConfigured, match="PAYMENT_KEY_ID"):
        await razorpay.create_order(receipt="r", amount_paise=1, currency="INR", notes={})
    with pytest.raises(ProviderNotConfigured, match="PAYMENT_KEY_SECRET"):
        await razorpay.verify_signature(order_id="o", payment_id="p", signature="s")
    stripe = StripeGateway(base_url="http://127.0.0.1:9", keys=empty, timeout_seconds=1)
    with pytest.raises(ProviderNotConfigured, match="PAYMENT_WEBHOOK_SECRET"):
        stripe.verify_webhook(body=b"{}", headers={})
    assert ProviderNotConfigured.status == 503


def test_stripe_webhooks_are_checked_with_stripes_scheme() -> None:
    stripe = StripeGateway(base_url="http://127.0.0.1:9", keys=KEYS, timeout_seconds=1)
    body, stamp = b'{"id":"evt_1"}', str(int(time.time()))
    v1 = hmac.new(b"hook-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert stripe.verify_webhook(body=body, headers={"stripe-signature": f"t={stamp},v1={v1}"})
    old = str(int(time.time()) - 3600)
    v1_old = hmac.new(b"hook-secret", old.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert not stripe.verify_webhook(body=body, headers={"stripe-signature": f"t={old},v1={v1_old}"})


def test_development_secrets_are_generated_once_per_data_folder(tmp_path: Path) -> None:
    settings = PaymentsSettings(environment="development", data_dir=tmp_path)
    keys = provider_keys(settings)
    assert keys.key_id and keys.key_id.startswith("rzp_test_") and keys.key_secret and keys.webhook_secret
    assert provider_keys(PaymentsSettings(environment="development", data_dir=tmp_path)) == keys
    assert provider_keys(PaymentsSettings(environment="development", data_dir=tmp_path / "other")) != keys
    vault = TokenVault(payment_methods_key(settings))
    assert vault.open(vault.seal("tok")) == "tok"
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert isinstance(build_provider(settings), SandboxProvider)


def test_missing_secrets_are_refused_outside_development() -> None:
    real: dict[str, Any] = {"environment": "production", "jwt_public_key": "pem", "database_url": "postgresql://db/x"}
    with pytest.raises(ValidationError, match="sandbox"):
        PaymentsSettings(**real)
    with pytest.raises(ValidationError, match="PAYMENT_KEY_SECRET"):
        PaymentsSettings(**{**real, "payment_provider": "razorpay", "payment_key_id": "rzp_live_x"})
    staging = {**real, "environment": "staging", "payment_key_id": "k", "payment_key_secret": "s1"}
    with pytest.raises(ValidationError, match="PAYMENT_METHODS_KEY"):
        PaymentsSettings(**{**staging, "payment_webhook_secret": "w1"})
    with pytest.raises(ValueError, match="PAYMENT_METHODS_KEY"):
        payment_methods_key(PaymentsSettings.model_construct(environment="production", payment_methods_key=None))
