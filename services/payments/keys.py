"""The service's secrets: from settings, or generated once per data folder in development.

A generated secret is written under ``data_dir/keys`` with mode 0600, next to the kit's JWT key,
so that every process started on the same folder (and a restart) signs and decrypts alike.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.payments.settings import PaymentsSettings

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 14) -> str:
    """A provider-style id: ``order_`` or ``pay_`` and 14 letters and digits, as Razorpay makes them."""
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


@dataclass(frozen=True)
class ProviderKeys:
    """What signs and verifies the provider's messages; None where nothing is configured."""

    key_id: str | None
    key_secret: SecretStr | None
    webhook_secret: SecretStr | None


def _in_development(settings: PaymentsSettings) -> bool:
    return settings.environment in ("development", "test")


def dev_secret(settings: PaymentsSettings, name: str, generate: Callable[[], str]) -> str:
    """Reads a generated secret from the data folder, creating it (mode 0600) on first use."""
    path = Path(settings.data_dir) / "keys" / name
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process on this folder made it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(generate())
    return path.read_text().strip()


def provider_keys(settings: PaymentsSettings) -> ProviderKeys:
    """The provider's key id and secrets; the sandbox gets generated ones in development."""
    key_id = settings.payment_key_id.get_secret_value() if settings.payment_key_id else None
    key_secret, webhook_secret = settings.payment_key_secret, settings.payment_webhook_secret
    if settings.payment_provider == "sandbox" and _in_development(settings):
        key_id = key_id or dev_secret(settings, "payments-key-id", lambda: random_id("rzp_test_"))
        key_secret = key_secret or SecretStr(
            dev_secret(settings, "payments-key-secret", lambda: secrets.token_urlsafe(32))
        )
        webhook_secret = webhook_secret or SecretStr(
            dev_secret(settings, "payments-webhook-secret", lambda: secrets.token_urlsafe(32))
        )
    return ProviderKeys(key_id=key_id, key_secret=key_secret, webhook_secret=webhook_secret)


def payment_methods_key(settings: PaymentsSettings) -> bytes:
    """The Fernet key for stored payment-method tokens; refused when missing outside development."""
    if settings.payment_methods_key is not None:
        return settings.payment_methods_key.get_secret_value().encode()
    if not _in_development(settings):
        raise ValueError("PAYMENT_METHODS_KEY must be set outside development")
    return dev_secret(settings, "payment-methods.fernet", lambda: Fernet.generate_key().decode()).encode()


class TokenVault:
    """Encrypts stored payment-method tokens (Fernet: AES-128-CBC with an HMAC, a fresh IV each time)."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ValueError("PAYMENT_METHODS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)") from exc

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, ciphertext: str) -> str:
        return self._fernet.decrypt(ciphertext.encode()).decode()
