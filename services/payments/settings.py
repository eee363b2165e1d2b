from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from services.kit.settings import ServiceSettings

Provider = Literal["sandbox", "razorpay", "stripe"]


class PaymentsSettings(ServiceSettings):
    """The payments service: orders, captures, invoices, subscriptions and stored payment methods.

    Secrets left unset are generated once per data folder in development and test (``keys.py``);
    anywhere else they must come from the environment.
    """

    service_name: str = "payments"
    payment_provider: Provider = "sandbox"
    payment_key_id: SecretStr | None = None
    payment_key_secret: SecretStr | None = None
    payment_webhook_secret: SecretStr | None = None
    # A Fernet key (32 url-safe base64 bytes) that encrypts stored card and UPI tokens.
    payment_methods_key: SecretStr | None = None
    order_ttl_seconds: int = Field(default=900, ge=1)
    order_expiry_interval_seconds: float = Field(default=30.0, gt=0)
    webhook_replay_window_seconds: int = Field(default=300, ge=1)
    sandbox_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Days after a payment within which cancelling its enrolment gives the money back.
    refund_window_days: int = Field(default=7, ge=0)
    invoice_prefix: str = Field(default="CBA", pattern=r"^[A-Z]{2,8}$")
    razorpay_api_url: str = "https://api.razorpay.com/v1"
    stripe_api_url: str = "https://api.stripe.com/v1"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _refuse_missing_secrets_outside_development(self) -> PaymentsSettings:
        if self.environment in ("development", "test"):
            return self
        if self.environment == "production" and self.payment_provider == "sandbox":
            raise ValueError("PAYMENT_PROVIDER=sandbox takes no real money; choose razorpay or stripe in production")
        missing = [
            name.upper()
            for name in ("payment_key_id", "payment_key_secret", "payment_webhook_secret", "payment_methods_key")
            if not _is_set(getattr(self, name))
        ]
        if missing:
            raise ValueError(f"{', '.join(missing)} must be set outside development")
        return self


def _is_set(value: SecretStr | None) -> bool:
    return value is not None and value.get_secret_value().strip().lower() not in ("", "changeme", "secret", "test")
