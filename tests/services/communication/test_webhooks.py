from __future__ import annotations

import time

import orjson

from services.communication.webhooks import SIGNATURE_HEADER, sign
from tests.services.communication.conftest import CommunicationApi, SmtpInbox

RESULT = {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}


async def _sent_email(comms: CommunicationApi) -> tuple[str, str]:
    user_id, address = await comms.register()
    await comms.dispatch()
    (welcome,) = await comms.messages(user_id)
    assert welcome.status == "sent" and welcome.provider_message_id
    return str(welcome.id), welcome.provider_message_id


async def test_delivery_reports_move_messages_to_delivered_and_bounced(comms: CommunicationApi) -> None:
    delivered_id, delivered_ref = await _sent_email(comms)
    bounced_id, bounced_ref = await _sent_email(comms)
    report = {
        "events": [
            {"provider_message_id": delivered_ref, "status": "delivered"},
            {"provider_message_id": bounced_ref, "status": "bounced", "error": "550 5.1.1 no such user"},
            {"provider_message_id": "unknown-id", "status": "delivered"},
        ]
    }
    response = await comms.webhook("smtp", report)
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 2, "ignored": 1}
    assert (await comms.message(delivered_id)).status == "delivered"
    bounced = await comms.message(bounced_id)
    assert (bounced.status, bounced.error) == ("bounced", "550 5.1.1 no such user")

    # The same report again changes nothing; a late "failed" cannot undo a delivery.
    assert (await comms.webhook("smtp", report)).json() == {"updated": 0, "ignored": 3}
    late = {"events": [{"provider_message_id": delivered_ref, "status": "failed"}]}
    assert (await comms.webhook("smtp", late)).json() == {"updated": 0, "ignored": 1}
    assert (await comms.message(delivered_id)).status == "delivered"

    history = (await comms.client.get(f"/notifications/{bounced.user_id}", headers=comms.admin)).json()["items"][0]
    assert [s["status"] for s in history["history"]] == ["queued", "sent", "bounced"]


async def test_a_bounced_address_gets_no_more_email(comms: CommunicationApi, inbox: SmtpInbox) -> None:
    message_id, ref = await _sent_email(comms)
    await comms.webhook("smtp", {"events": [{"provider_message_id": ref, "status": "bounced"}]})
    user_id = (await comms.message(message_id)).user_id
    assert user_id is not None
    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["email", "in_app"])
    assert {m["channel"]: m["status"] for m in response.json()["messages"]} == {
        "email": "suppressed",
        "in_app": "queued",
    }


async def test_forged_missing_or_stale_signatures_are_refused(comms: CommunicationApi) -> None:
    _, ref = await _sent_email(comms)
    body = orjson.dumps({"events": [{"provider_message_id": ref, "status": "delivered"}]})
    now = int(time.time())
    attempts = {
        "missing": {},
        "forged": {SIGNATURE_HEADER: sign(b"not-the-secret", body, now)},
        "malformed": {SIGNATURE_HEADER: "sha256=abc"},
        "stale": {SIGNATURE_HEADER: sign(comms.app.state.communication.webhook_secrets["smtp"], body, now - 3600)},
        "other provider's secret": {
            SIGNATURE_HEADER: sign(comms.app.state.communication.webhook_secrets["twilio"], body, now)
        },
    }
    for name, headers in attempts.items():
        response = await comms.client.post("/communication/webhooks/smtp", content=body, headers=headers)
        assert response.status_code == 401, name
    tampered = body.replace(b"delivered", b"bounced")
    headers = {SIGNATURE_HEADER: sign(comms.app.state.communication.webhook_secrets["smtp"], body, now)}
    assert (
        await comms.client.post("/communication/webhooks/smtp", content=tampered, headers=headers)
    ).status_code == 401

    response = await comms.client.get("/communication/logs", params={"status": "delivered"}, headers=comms.admin)
    assert response.json()["total"] == 0
    assert (await comms.webhook("smtp", {"events": [{"status": "delivered"}]})).status_code == 422
    assert (await comms.client.post("/communication/webhooks/pigeon", content=body)).status_code == 404
