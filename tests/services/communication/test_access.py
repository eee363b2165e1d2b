from __future__ import annotations

import uuid
from typing import Any

from tests.services.communication.conftest import PROBLEM, CommunicationApi

SEND = {"user_id": str(uuid.uuid4()), "template": "welcome", "variables": {"name": "Asha"}, "channels": ["in_app"]}
ENDPOINTS = [
    ("POST", "/notifications/send", SEND),
    ("POST", "/email/send", {"to": "a@example.com", "subject": "s", "body": "b"}),
    ("POST", "/whatsapp/send-message", {"to": "+919812345678", "body": "b"}),
    ("GET", f"/notifications/{uuid.uuid4()}", None),
    ("GET", "/notifications/preferences", None),
    ("PUT", "/notifications/preferences", {"email": False}),
    ("GET", "/communication/logs", None),
    ("GET", "/communication/templates", None),
    ("POST", "/communication/templates", {"name": "reminder", "channel": "in_app", "body": "Hi {{ name }}"}),
]
ADMIN_ONLY = [e for e in ENDPOINTS if e[1].startswith(("/communication", "/email", "/whatsapp", "/notifications/send"))]


async def test_anonymous_callers_are_refused_everywhere(comms: CommunicationApi) -> None:
    for method, path, body in ENDPOINTS:
        response = await comms.client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.headers["www-authenticate"] == "Bearer"
    response = await comms.client.get("/communication/logs", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


async def test_students_cannot_send_nor_read_the_logs_or_templates(comms: CommunicationApi) -> None:
    _, student = comms.caller("student")
    for method, path, body in ADMIN_ONLY:
        response = await comms.client.request(method, path, json=body, headers=student)
        assert response.status_code == 403, (method, path)


async def test_services_and_admins_can_send(comms: CommunicationApi) -> None:
    _, service = comms.caller("service")
    body = {**SEND, "user_id": str(await comms.known())}
    response = await comms.client.post("/notifications/send", json=body, headers=service)
    assert response.status_code == 202, response.text
    assert (await comms.client.get("/communication/logs", headers=comms.admin)).status_code == 200


async def test_a_student_reads_only_their_own_notifications(comms: CommunicationApi) -> None:
    asha, asha_headers = comms.caller(user_id=await comms.known())
    ravi = await comms.known(name="Ravi Kumar")
    for user_id in (asha, ravi):
        body = {**SEND, "user_id": str(user_id)}
        assert (await comms.client.post("/notifications/send", json=body, headers=comms.admin)).status_code == 202

    own = await comms.client.get(f"/notifications/{asha}", headers=asha_headers)
    assert own.status_code == 200 and own.json()["total"] == 1
    other = await comms.client.get(f"/notifications/{ravi}", headers=asha_headers)
    assert other.status_code == 403
    assert (await comms.client.get(f"/notifications/{ravi}", headers=comms.admin)).json()["total"] == 1
    assert (await comms.client.get("/notifications/not-a-uuid", headers=comms.admin)).status_code == 422


async def test_admins_filter_the_logs_by_status_channel_and_user(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone="+919812345678")  # queues a welcome email
    comms.sandbox("sms").fail_always = True
    comms.sandbox("sms").permanent = True
    body: dict[str, Any] = {"user_id": str(user_id), "template": "payment_receipt", "channels": ["sms", "in_app"]}
    body["variables"] = {"name": "Asha", "amount_paise": 100, "currency": "INR", "payment_id": "P1"}
    assert (await comms.client.post("/notifications/send", json=body, headers=comms.admin)).status_code == 202
    await comms.dispatch()

    logs = (await comms.client.get("/communication/logs", params={"user_id": str(user_id)}, headers=comms.admin)).json()
    assert logs["total"] == 3
    assert {(e["channel"], e["status"]) for e in logs["items"]} == {
        ("email", "sent"),
        ("sms", "failed"),
        ("in_app", "delivered"),
    }
    assert all("body" not in e for e in logs["items"])
    failed = await comms.client.get("/communication/logs", params={"status": "failed"}, headers=comms.admin)
    (entry,) = failed.json()["items"]
    assert entry["channel"] == "sms" and entry["recipient"] == "+91********78"
    assert entry["error"] == "sandbox provider refused the message"
    by_channel = await comms.client.get("/communication/logs", params={"channel": "email"}, headers=comms.admin)
    assert [e["template"] for e in by_channel.json()["items"]] == ["welcome"]
    assert by_channel.json()["items"][0]["recipient"].startswith("a***@")
    bad = await comms.client.get("/communication/logs", params={"status": "lost"}, headers=comms.admin)
    assert bad.status_code == 422
