from __future__ import annotations

from tests.services.communication.conftest import CommunicationApi


async def test_the_embedded_service_queues_sends_and_reports_on_sqlite(embedded_comms: CommunicationApi) -> None:
    comms = embedded_comms
    user_id, address = await comms.register(phone="+919812345678")
    variables = {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}
    response = await comms.notify(user_id, "assessment_result", variables)
    assert response.status_code == 202, response.text
    assert await comms.dispatch() == 5  # the welcome email, then email, WhatsApp, SMS and in-app

    assert [e.to for e in comms.sandbox("email").sent] == [address, address]
    ref = comms.sandbox("whatsapp").sent[0]
    report = {"events": [{"provider_message_id": f"sandbox-{ref.message_id.hex}", "status": "delivered"}]}
    assert (await comms.webhook("whatsapp", report)).json() == {"updated": 1, "ignored": 0}

    _, headers = comms.caller(user_id=user_id)
    page = (await comms.client.get(f"/notifications/{user_id}", headers=headers)).json()
    assert page["total"] == 5
    assert {m["channel"]: m["status"] for m in page["items"] if m["template"] == "assessment_result"} == {
        "email": "sent",
        "whatsapp": "delivered",
        "sms": "sent",
        "in_app": "delivered",
    }
    await comms.webhook("twilio", {"from": "+919812345678", "text": "STOP"}, inbound=True)
    again = await comms.notify(user_id, "assessment_result", variables, channels=["sms"])
    assert again.json()["messages"][0]["status"] == "suppressed"
