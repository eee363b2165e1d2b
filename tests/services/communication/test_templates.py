from __future__ import annotations

from tests.services.communication.conftest import CommunicationApi


async def test_the_default_templates_are_seeded_on_every_channel(comms: CommunicationApi) -> None:
    response = await comms.client.get("/communication/templates", headers=comms.admin)
    assert response.status_code == 200
    found = {(t["name"], t["channel"]) for t in response.json()}
    for name in ("welcome", "enrolment_confirmation", "payment_receipt", "assessment_result"):
        assert {(name, c) for c in ("email", "whatsapp", "sms", "in_app")} <= found
    (confirmation,) = [t for t in response.json() if t["name"] == "enrolment_confirmation" and t["channel"] == "email"]
    assert confirmation["version"] == 1 and confirmation["active"] is True
    assert confirmation["variables"] == ["amount_paise", "course_title", "name"]


async def test_updating_a_template_makes_a_new_version_that_messages_record(comms: CommunicationApi) -> None:
    user_id = await comms.known()
    variables = {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}
    first = await comms.notify(user_id, "assessment_result", variables, channels=["in_app"])

    change = {"name": "assessment_result", "channel": "in_app", "body": "{{ name }}: {{ percentage }}% in {{ topic }}"}
    response = await comms.client.post("/communication/templates", json=change, headers=comms.admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["version"], created["active"]) == (2, True)
    assert created["variables"] == ["name", "percentage", "topic"]

    second = await comms.notify(user_id, "assessment_result", variables, channels=["in_app"])
    old = await comms.message(first.json()["message_ids"][0])
    new = await comms.message(second.json()["message_ids"][0])
    assert (old.template_version, old.body) == (1, "You scored 80.0% in genetics.")
    assert (new.template_version, new.body) == (2, "Asha: 80.0% in genetics")

    params = {"name": "assessment_result", "channel": "in_app", "all_versions": "true"}
    versions = (await comms.client.get("/communication/templates", params=params, headers=comms.admin)).json()
    assert [(v["version"], v["active"]) for v in versions] == [(2, True), (1, False)]
    active = (
        await comms.client.get(
            "/communication/templates", params=params | {"all_versions": "false"}, headers=comms.admin
        )
    ).json()
    assert [v["version"] for v in active] == [2]


async def test_a_new_template_name_starts_at_version_one(comms: CommunicationApi) -> None:
    body = {
        "name": "class_reminder",
        "channel": "email",
        "subject": "{{ course }} today",
        "body": "See you at {{ at }}.",
    }
    response = await comms.client.post("/communication/templates", json=body, headers=comms.admin)
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["variables"]) == (1, ["at", "course"])


async def test_invalid_templates_are_refused(comms: CommunicationApi) -> None:
    bad = [
        {"name": "reminder", "channel": "email", "body": "no subject"},
        {"name": "reminder", "channel": "sms", "subject": "sms has none", "body": "x"},
        {"name": "reminder", "channel": "in_app", "body": "{{ unclosed "},
        {"name": "Bad Name", "channel": "in_app", "body": "x"},
        {"name": "reminder", "channel": "pigeon", "body": "x"},
    ]
    for body in bad:
        response = await comms.client.post("/communication/templates", json=body, headers=comms.admin)
        assert response.status_code == 422, body


async def test_the_sandbox_keeps_templates_away_from_python_internals(comms: CommunicationApi) -> None:
    body = {"name": "probe", "channel": "in_app", "body": "{{ name.__class__.__mro__ }}"}
    assert (await comms.client.post("/communication/templates", json=body, headers=comms.admin)).status_code == 201
    user_id = await comms.known()
    response = await comms.notify(user_id, "probe", {"name": "x"})
    assert response.status_code == 422
