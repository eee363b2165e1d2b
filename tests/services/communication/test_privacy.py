from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from services.communication.settings import CommunicationSettings, webhook_secrets
from tests.conftest import LogCapture
from tests.services.communication.conftest import CommunicationApi, SmtpInbox

PHONE = "+919876501234"


async def test_no_address_phone_or_body_reaches_the_logs(
    comms: CommunicationApi, inbox: SmtpInbox, logs: LogCapture
) -> None:
    user_id, address = await comms.register(email_address="meera.iyer@example.com", phone=PHONE)
    secret_body = "Your counselling slot is 4pm with Dr Sharma"
    await comms.client.post(
        "/email/send",
        json={"to": "guardian.iyer@example.com", "subject": "Counselling", "body": secret_body},
        headers=comms.admin,
    )
    await comms.client.post("/whatsapp/send-message", json={"to": PHONE, "body": secret_body}, headers=comms.admin)
    comms.sandbox("sms").fail_next = 1
    await comms.notify(
        user_id,
        "assessment_result",
        {"name": "Meera", "topic": "genetics", "score": 1, "max_score": 2, "percentage": 50.0},
        channels=["sms"],
    )
    await comms.dispatch()
    await comms.webhook("whatsapp", {"from": PHONE, "text": "STOP"}, inbound=True)
    assert len(inbox.received) == 2

    text = logs.text()
    assert "notification_queued" in text and "notification_sent" in text and "notification_opt_out" in text
    for secret in (address, "guardian.iyer@example.com", PHONE, PHONE.lstrip("+"), secret_body, "Meera"):
        assert secret not in text, secret
    assert "m***@example.com" in text and "+91********34" in text


def test_development_webhook_secrets_are_generated_private_and_kept(tmp_path: Path) -> None:
    settings = CommunicationSettings(environment="development", data_dir=tmp_path)
    first = webhook_secrets(settings)
    assert set(first) == {"smtp", "whatsapp", "twilio"} and len(set(first.values())) == 3
    for provider in first:
        path = tmp_path / "keys" / f"webhook-{provider}.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert webhook_secrets(settings) == first
    given = CommunicationSettings(
        environment="development", data_dir=tmp_path, smtp_webhook_secret=SecretStr("from-env-123")
    )
    assert webhook_secrets(given)["smtp"] == b"from-env-123"


def test_production_refuses_missing_or_placeholder_secrets(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "environment": "production",
        "data_dir": tmp_path,
        "database_url": "postgresql://db/cerebrum",
        "jwt_public_key": "-----BEGIN PUBLIC KEY-----",
    }
    with pytest.raises(ValidationError, match="SMTP_WEBHOOK_SECRET"):
        CommunicationSettings(**base)
    secrets: dict[str, Any] = {f"{p}_webhook_secret": "a-long-random-value" for p in ("smtp", "whatsapp", "twilio")}
    with pytest.raises(ValidationError, match="TWILIO_WEBHOOK_SECRET"):
        CommunicationSettings(**base, **{**secrets, "twilio_webhook_secret": "changeme"})
    assert CommunicationSettings(**base, **secrets).smtp_webhook_secret is not None
    with pytest.raises(ValidationError, match="WHATSAPP_PHONE_NUMBER_ID"):
        CommunicationSettings(**base, **secrets, whatsapp_token=SecretStr("token"))
