from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.services.communication.conftest import CommunicationApi, SmtpInbox

PHONE = "+919812345678"
RESULT = {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}


async def test_preferences_start_all_on_and_change_only_what_is_sent(comms: CommunicationApi) -> None:
    user_id, headers = comms.caller()
    response = await comms.client.get("/notifications/preferences", headers=headers)
    assert response.json() == {
        "user_id": str(user_id),
        "email": True,
        "whatsapp": True,
        "sms": True,
        "in_app": True,
        "quiet_hours": None,
    }
    response = await comms.client.put("/notifications/preferences", json={"sms": False}, headers=headers)
    assert response.status_code == 200 and response.json()["sms"] is False
    quiet = {"start": "22:00:00", "end": "07:00:00", "timezone": "Asia/Kolkata"}
    response = await comms.client.put("/notifications/preferences", json={"quiet_hours": quiet}, headers=headers)
    assert response.json()["sms"] is False and response.json()["quiet_hours"] == quiet
    response = await comms.client.put("/notifications/preferences", json={"quiet_hours": None}, headers=headers)
    assert response.json()["quiet_hours"] is None and response.json()["sms"] is False

    for bad in ({"email": "maybe"}, {"push": True}, {"quiet_hours": {"start": "22:00", "end": "22:00"}}):
        assert (await comms.client.put("/notifications/preferences", json=bad, headers=headers)).status_code == 422
    bad_zone = {"quiet_hours": {"start": "22:00", "end": "06:00", "timezone": "Mars/Olympus"}}
    assert (await comms.client.put("/notifications/preferences", json=bad_zone, headers=headers)).status_code == 422


async def test_a_switched_off_channel_gets_nothing_while_the_others_still_work(
    comms: CommunicationApi, inbox: SmtpInbox
) -> None:
    user_id, _ = await comms.register(phone=PHONE)
    await comms.dispatch()
    inbox.received.clear()
    _, headers = comms.caller(user_id=user_id)
    await comms.client.put("/notifications/preferences", json={"email": False}, headers=headers)

    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["email", "whatsapp"])
    assert response.status_code == 202
    statuses = {m["channel"]: m["status"] for m in response.json()["messages"]}
    assert statuses == {"email": "suppressed", "whatsapp": "queued"}

    await comms.dispatch()
    assert inbox.received == []
    assert [e.to for e in comms.sandbox("whatsapp").sent] == [PHONE]
    by_channel = {m.channel: m for m in await comms.messages(user_id) if m.template == "assessment_result"}
    assert by_channel["email"].status == "suppressed" and by_channel["email"].attempts == 0
    assert by_channel["whatsapp"].status == "sent"


async def test_switching_off_after_queueing_still_stops_the_send(comms: CommunicationApi, inbox: SmtpInbox) -> None:
    user_id, _ = await comms.register()  # the welcome email is queued, not yet sent
    _, headers = comms.caller(user_id=user_id)
    await comms.client.put("/notifications/preferences", json={"email": False}, headers=headers)
    await comms.dispatch()
    assert inbox.received == []
    (welcome,) = await comms.messages(user_id)
    assert welcome.status == "suppressed"


async def test_a_stop_reply_opts_the_sender_out_of_that_channel_only(comms: CommunicationApi, inbox: SmtpInbox) -> None:
    user_id, _ = await comms.register(phone=PHONE)
    await comms.dispatch()
    inbox.received.clear()
    # A WhatsApp message is already queued when the STOP arrives: it is not sent either.
    queued = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp"])
    assert queued.status_code == 202

    response = await comms.webhook("whatsapp", {"from": PHONE.lstrip("+"), "text": " stop "}, inbound=True)
    assert response.status_code == 200, response.text
    assert response.json() == {"action": "opted_out", "channel": "whatsapp"}
    _, headers = comms.caller(user_id=user_id)
    prefs = (await comms.client.get("/notifications/preferences", headers=headers)).json()
    assert (prefs["whatsapp"], prefs["sms"], prefs["email"]) == (False, True, True)

    later = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp", "sms", "email"])
    assert {m["channel"]: m["status"] for m in later.json()["messages"]} == {
        "whatsapp": "suppressed",
        "sms": "queued",
        "email": "queued",
    }
    await comms.dispatch()
    assert comms.sandbox("whatsapp").sent == []
    assert [e.to for e in comms.sandbox("sms").sent] == [PHONE]
    assert len(inbox.received) == 1
    (first,) = [m for m in await comms.messages(user_id) if str(m.id) == queued.json()["message_ids"][0]]
    assert first.status == "suppressed"

    # A direct send to the bare number is refused too, even with no user named.
    direct = await comms.client.post("/whatsapp/send-message", json={"to": PHONE, "body": "Hi"}, headers=comms.admin)
    assert direct.json()["messages"][0]["status"] == "suppressed"

    # START (or switching the channel back on) undoes it.
    response = await comms.webhook("whatsapp", {"from": PHONE, "text": "START"}, inbound=True)
    assert response.json()["action"] == "opted_in"
    again = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp"])
    assert again.json()["messages"][0]["status"] == "queued"
    other = await comms.webhook("twilio", {"from": PHONE, "text": "Thanks!"}, inbound=True)
    assert other.json() == {"action": "ignored", "channel": "sms"}


async def test_switching_a_channel_back_on_lifts_the_stop(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone=PHONE)
    await comms.webhook("twilio", {"from": PHONE, "text": "STOP"}, inbound=True)
    _, headers = comms.caller(user_id=user_id)
    await comms.client.put("/notifications/preferences", json={"sms": True}, headers=headers)
    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["sms"])
    assert response.json()["messages"][0]["status"] == "queued"


async def test_quiet_hours_hold_whatsapp_until_they_end(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone=PHONE)
    _, headers = comms.caller(user_id=user_id)
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=1)).strftime("%H:%M")
    quiet = {"start": start, "end": end, "timezone": "UTC"}
    await comms.client.put("/notifications/preferences", json={"quiet_hours": quiet}, headers=headers)
    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp", "in_app"])
    ids = {m["channel"]: m["id"] for m in response.json()["messages"]}

    await comms.dispatch()
    held = await comms.message(ids["whatsapp"])
    assert held.status == "queued" and held.attempts == 0
    assert timedelta(minutes=55) < held.next_attempt_at - now <= timedelta(hours=1, minutes=1)
    assert (await comms.message(ids["in_app"])).status == "delivered"  # only phones are kept quiet

    await comms.dispatch(now=held.next_attempt_at + timedelta(seconds=1))
    assert (await comms.message(ids["whatsapp"])).status == "sent"
