from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr

from services.communication.adapters import SmtpEmailProvider, TwilioSmsProvider, WhatsAppCloudProvider
from services.communication.app import build_providers
from services.communication.dispatcher import Dispatcher
from services.communication.providers import InAppProvider, SandboxProvider
from services.communication.settings import CommunicationSettings
from tests.services.communication.conftest import CommunicationApi


async def test_two_dispatchers_never_send_the_same_message_twice(comms: CommunicationApi) -> None:
    whatsapp = comms.sandbox("whatsapp")
    whatsapp.latency_seconds = 0.01
    ids = []
    for n in range(30):
        response = await comms.client.post(
            "/whatsapp/send-message", json={"to": f"+9198000000{n:02d}", "body": f"Batch {n}"}, headers=comms.admin
        )
        ids += response.json()["message_ids"]
    small = comms.settings.model_copy(update={"dispatcher_batch_size": 10})
    replicas = [
        Dispatcher(db=comms.kit.db, providers={"whatsapp": whatsapp}, limiter=comms.kit.limiter, settings=small)
        for _ in range(2)
    ]
    while True:
        rounds = await asyncio.gather(*(r.dispatch_once() for r in replicas))
        if not any(rounds):
            break
    sent = [str(e.message_id) for e in whatsapp.sent]
    assert sorted(sent) == sorted(ids) and len(set(sent)) == 30


def test_real_adapters_are_used_when_their_keys_are_set(tmp_path: Path) -> None:
    offline = build_providers(CommunicationSettings(environment="test", data_dir=tmp_path))
    assert [type(p) for p in offline.values()] == [SandboxProvider, SandboxProvider, SandboxProvider, InAppProvider]
    configured = CommunicationSettings(
        environment="test",
        data_dir=tmp_path,
        smtp_url=SecretStr("smtps://mailer:p%40ss@smtp.example.com"),
        whatsapp_token=SecretStr("meta-token"),
        whatsapp_phone_number_id="1234567890",
        twilio_account_sid="AC123",
        twilio_auth_token=SecretStr("twilio-token"),
        twilio_from_number="+15005550006",
    )
    providers = build_providers(configured)
    email = providers["email"]
    assert isinstance(email, SmtpEmailProvider)
    assert (email.hostname, email.port, email.implicit_tls, email.password) == ("smtp.example.com", 465, True, "p@ss")
    assert isinstance(providers["whatsapp"], WhatsAppCloudProvider)
    assert providers["whatsapp"].url == "https://graph.facebook.com/v21.0/1234567890/messages"
    assert isinstance(providers["sms"], TwilioSmsProvider)
    assert providers["sms"].url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
