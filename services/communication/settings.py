from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from services.kit.settings import ServiceSettings

# A provider's status webhooks are signed with its own secret; the name is the path segment.
WEBHOOK_PROVIDERS = ("smtp", "whatsapp", "twilio")
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "dev", "test", ""}


class CommunicationSettings(ServiceSettings):
    """The communication service: templates, preferences, and email, WhatsApp, SMS and in-app delivery."""

    service_name: str = "communication"
    # A message may leave a quarter second later: the events of that time are handled in one
    # transaction and their messages sent in one dispatcher round.
    consumer_linger_ms: int = Field(default=250, ge=0, le=5_000)
    # smtp://user:password@host:587 (STARTTLS when offered), smtps://host:465 (implicit TLS);
    # unset means the offline sandbox records emails instead of sending them.
    smtp_url: SecretStr | None = None
    email_sender: str = "Cerebrum Biology Academy <no-reply@cerebrum.academy>"
    # WhatsApp Business (Meta Cloud API); unset means the sandbox.
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    # SMS through Twilio; unset means the sandbox.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    # The sandbox providers fail this share of sends (chaos experiments, offline drills).
    sandbox_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    smtp_webhook_secret: SecretStr | None = None
    whatsapp_webhook_secret: SecretStr | None = None
    twilio_webhook_secret: SecretStr | None = None
    webhook_tolerance_seconds: int = Field(default=300, ge=1)

    dispatcher_enabled: bool = True
    dispatcher_interval_seconds: float = Field(default=1.0, gt=0)
    dispatcher_batch_size: int = Field(default=200, ge=1, le=5000)
    dispatcher_concurrency: int = Field(default=20, ge=1, le=500)
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_backoff_seconds: float = Field(default=2.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=900.0, gt=0)
    # Per provider, shared by every replica through Redis: above the plan's 1,000 messages/min.
    provider_rate_limit: str = "1200/minute"
    default_timezone: str = "Asia/Kolkata"

    @model_validator(mode="after")
    def _complete_provider_keys(self) -> CommunicationSettings:
        if bool(self.whatsapp_token) != bool(self.whatsapp_phone_number_id):
            raise ValueError("WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID are set together")
        twilio = (self.twilio_account_sid, self.twilio_auth_token, self.twilio_from_number)
        if any(twilio) and not all(twilio):
            raise ValueError("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER are set together")
        if self.environment in ("development", "test"):
            return self
        for provider in WEBHOOK_PROVIDERS:
            secret = getattr(self, f"{provider}_webhook_secret")
            if secret is None or secret.get_secret_value().strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"{provider.upper()}_WEBHOOK_SECRET must be set to a real secret outside development")
        return self


def webhook_secrets(settings: CommunicationSettings) -> dict[str, bytes]:
    """Each provider's webhook secret: from settings, or (development) one generated under data_dir/keys."""
    found: dict[str, bytes] = {}
    for provider in WEBHOOK_PROVIDERS:
        secret: SecretStr | None = getattr(settings, f"{provider}_webhook_secret")
        if secret is not None:
            found[provider] = secret.get_secret_value().encode()
        elif settings.environment in ("development", "test"):
            found[provider] = _load_or_create_dev_secret(
                Path(settings.data_dir) / "keys" / f"webhook-{provider}.secret"
            )
        else:  # the settings validator refuses this already; kept for settings built without validation
            raise ValueError(f"{provider.upper()}_WEBHOOK_SECRET must be set outside development")
    return found


def _load_or_create_dev_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica of the development stack wrote it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value
