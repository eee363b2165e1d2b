"""A finished course and a refund reach the student by email and in-app; admins send to known users only."""

from __future__ import annotations

import uuid

from services.communication.models import Message
from services.contracts.events import EnrollmentCompleted, PaymentRefunded
from services.kit.time import utcnow
from tests.services.communication.conftest import PROBLEM, CommunicationApi, SmtpInbox, event


async def test_finishing_a_course_sends_a_congratulation_by_email_and_in_app_once(
    comms: CommunicationApi, inbox: SmtpInbox
) -> None:
    user_id, address = await comms.register(name="Meera Iyer")
    data = EnrollmentCompleted(
        enrollment_id=uuid.uuid4(),
        user_id=user_id,
        course_id=uuid.uuid4(),
        completed_at=utcnow(),
        course_title="Human Physiology for NEET",
    ).data()
    completed = event("enrollment.completed", data)
    assert await comms.deliver(completed) == [None]
    assert await comms.deliver(completed) == [None], "a replay is accepted and changes nothing"
    again = event("enrollment.completed", {**data, "completed_at": utcnow().isoformat()})
    assert await comms.deliver(again) == [None], "finished again after a reopening: congratulated once"

    mine = [m for m in await comms.messages(user_id) if m.template == "course_completion"]
    assert sorted(m.channel for m in mine) == ["email", "in_app"]
    (email,) = [m for m in mine if m.channel == "email"]
    assert email.subject == "You completed Human Physiology for NEET"
    assert "Hi Meera Iyer" in email.body
    (in_app,) = [m for m in mine if m.channel == "in_app"]
    assert in_app.body == "Congratulations, Meera Iyer: you completed Human Physiology for NEET!"

    await comms.dispatch()
    sent = [(m["Subject"], to) for m, to in zip(inbox.received, inbox.recipients, strict=True)]
    assert ("You completed Human Physiology for NEET", [address]) in sent


async def test_a_refund_tells_the_student_the_amount_and_the_credit_note(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(name="Kabir Shah")
    data = PaymentRefunded(
        refund_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        enrollment_id=uuid.uuid4(),
        user_id=user_id,
        course_id=uuid.uuid4(),
        amount_paise=1_499_900,
        description="Enrolment: Human Physiology for NEET",
        credit_note_number="CBA/CN/2026-27/000001",
        reason="cancelled_by_student",
        refunded_at=utcnow(),
    ).data()
    assert await comms.deliver(event("payment.refunded", data)) == [None]

    mine = {m.channel: m for m in await comms.messages(user_id) if m.template == "refund_confirmation"}
    assert set(mine) == {"email", "in_app"}
    assert mine["email"].subject == "Refund of ₹14,999.00 on its way"
    assert "CBA/CN/2026-27/000001" in mine["email"].body and "Hi Kabir Shah" in mine["email"].body
    assert mine["in_app"].body == (
        "₹14,999.00 refunded for Enrolment: Human Physiology for NEET; credit note CBA/CN/2026-27/000001."
    )


async def test_sending_to_a_user_nobody_registered_is_a_404_and_queues_nothing(comms: CommunicationApi) -> None:
    before = await comms.count(Message)
    response = await comms.notify(uuid.uuid4(), "welcome", {"name": "Ghost"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/user-not-found")
    assert await comms.count(Message) == before


async def test_sending_without_a_name_addresses_the_user_by_their_stored_name(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(name="Asha Rao")
    response = await comms.notify(user_id, "welcome", {}, channels=["in_app"])
    assert response.status_code == 202, response.text
    (message_id,) = response.json()["message_ids"]
    assert (await comms.message(message_id)).body.startswith("Welcome, Asha Rao!")

    given = await comms.notify(user_id, "welcome", {"name": "Asha"}, channels=["in_app"])
    assert (await comms.message(given.json()["message_ids"][0])).body.startswith("Welcome, Asha!")
