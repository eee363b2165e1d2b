from __future__ import annotations

import uuid

from services.communication.models import Message
from tests.services.communication.conftest import PROBLEM, CommunicationApi, SmtpInbox


async def test_a_notification_arrives_by_email_rendered_from_its_template(
    comms: CommunicationApi, inbox: SmtpInbox
) -> None:
    user_id, address = await comms.register(name="Asha Rao")
    await comms.dispatch()  # the welcome email
    inbox.received.clear()

    response = await comms.notify(
        user_id,
        "enrolment_confirmation",
        {"name": "Asha", "course_title": "Genetics and Evolution", "amount_paise": 1999900},
        channels=["email"],
    )
    assert response.status_code == 202, response.text
    (queued,) = response.json()["messages"]
    assert queued["channel"] == "email" and queued["status"] == "queued"
    assert response.json()["message_ids"] == [queued["id"]]

    assert await comms.dispatch() == 1
    (received,) = inbox.received
    assert received["To"] == address
    assert received["Subject"] == "You are enrolled in Genetics and Evolution"
    payload = received.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "Hi Asha," in body
    assert "Your enrolment in Genetics and Evolution is confirmed (₹19,999.00)" in body
    assert received["Message-ID"] == f"<{queued['id']}@cerebrum.academy>"

    message = await comms.message(queued["id"])
    assert (message.status, message.attempts, message.provider) == ("sent", 1, "smtp")
    assert message.template == "enrolment_confirmation" and message.template_version == 1
    assert message.provider_message_id == f"{queued['id']}@cerebrum.academy"


async def test_without_channels_every_channel_that_reaches_the_user_is_used(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone="+919812345678")
    response = await comms.notify(user_id, "assessment_result", _result())
    assert response.status_code == 202, response.text
    assert sorted(m["channel"] for m in response.json()["messages"]) == ["email", "in_app", "sms", "whatsapp"]

    no_phone, _ = await comms.register()
    response = await comms.notify(no_phone, "assessment_result", _result())
    assert sorted(m["channel"] for m in response.json()["messages"]) == ["email", "in_app"]

    # Asked for explicitly, a channel that cannot reach the user is an error, not silence.
    response = await comms.notify(no_phone, "assessment_result", _result(), channels=["sms"])
    assert response.status_code == 422
    assert "phone number" in response.json()["detail"]


async def test_a_missing_variable_is_a_422_naming_it_and_nothing_is_queued(
    comms: CommunicationApi, inbox: SmtpInbox
) -> None:
    user_id, _ = await comms.register()
    before = await comms.count(Message)

    response = await comms.notify(user_id, "enrolment_confirmation", {"name": "Asha", "amount_paise": 100})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert "course_title" in problem["detail"]
    assert problem["missing"] == ["course_title"]
    assert {"field": "variables.course_title", "message": "missing"} in problem["errors"]
    assert await comms.count(Message) == before

    response = await comms.notify(user_id, "no_such_template", {})
    assert response.status_code == 404


async def test_direct_email_and_whatsapp_to_an_address_or_a_user(comms: CommunicationApi, inbox: SmtpInbox) -> None:
    user_id, _ = await comms.register(phone="+919812345678")
    response = await comms.client.post(
        "/email/send",
        json={"to": "Parent.Rao@Example.com", "subject": "Parent-teacher meeting", "body": "Saturday at 10."},
        headers=comms.admin,
    )
    assert response.status_code == 202, response.text
    response = await comms.client.post(
        "/whatsapp/send-message",
        json={"user_id": str(user_id), "template": "payment_receipt", "variables": _receipt()},
        headers=comms.admin,
    )
    assert response.status_code == 202, response.text
    (whatsapp,) = response.json()["messages"]
    assert whatsapp["channel"] == "whatsapp"

    await comms.dispatch()
    sent = [m for m in inbox.received if m["Subject"] == "Parent-teacher meeting"]
    assert len(sent) == 1 and sent[0]["To"] == "parent.rao@example.com"
    (envelope,) = comms.sandbox("whatsapp").sent
    assert envelope.to == "+919812345678"
    assert envelope.body == "Hi Asha Rao, we received ₹499.00 (ref PAY-1). Thank you!"

    bad = [
        {"to": "a@example.com"},  # neither template nor body
        {"to": "a@example.com", "user_id": str(user_id), "subject": "s", "body": "b"},  # both recipients
        {"to": "a@example.com", "body": "no subject"},
    ]
    for body in bad:
        assert (await comms.client.post("/email/send", json=body, headers=comms.admin)).status_code == 422
    response = await comms.client.post(
        "/whatsapp/send-message", json={"to": "98123", "body": "hello"}, headers=comms.admin
    )
    assert response.status_code == 422


def _result() -> dict[str, object]:
    return {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}


def _receipt() -> dict[str, object]:
    return {"name": "Asha Rao", "amount_paise": 49900, "currency": "INR", "payment_id": "PAY-1"}


async def test_a_student_reads_their_own_messages_newest_first(comms: CommunicationApi) -> None:
    user_id = await comms.known()
    _, headers = comms.caller(user_id=user_id)
    for percentage in (40.0, 60.0, 80.0):
        response = await comms.notify(user_id, "assessment_result", {**_result(), "percentage": percentage})
        assert response.status_code == 202, response.text
    await comms.dispatch()

    response = await comms.client.get(f"/notifications/{user_id}", params={"limit": 2}, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 3 and len(page["items"]) == 2
    newest = page["items"][0]
    assert newest["body"] == "You scored 80.0% in genetics."
    assert (newest["channel"], newest["status"]) == ("in_app", "delivered")
    assert [s["status"] for s in newest["history"]] == ["queued", "sent", "delivered"]
    response = await comms.client.get(f"/notifications/{user_id}", params={"offset": 2}, headers=headers)
    assert [m["body"] for m in response.json()["items"]] == ["You scored 40.0% in genetics."]
    assert (await comms.client.get(f"/notifications/{uuid.uuid4()}", headers=comms.admin)).json()["total"] == 0
