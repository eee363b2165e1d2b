from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from services.communication.models import Contact, Message
from services.contracts.events import (
    EnrollmentConfirmed,
    PaymentSucceeded,
    UserDeleted,
    UserRegistered,
    UserUpdated,
)
from tests.services.communication.conftest import CommunicationApi, SmtpInbox, event, scored_test

NOW = datetime(2026, 3, 14, 10, 30, tzinfo=UTC)


async def test_a_registration_stores_the_contact_and_sends_one_welcome_email(
    comms: CommunicationApi, inbox: SmtpInbox
) -> None:
    user_id = uuid.uuid4()
    data = UserRegistered(user_id=user_id, email="Asha.Rao@Example.com", full_name="Asha Rao").data()
    data["phone"] = "+91 98123 45678"
    registered = event("user.registered", data)
    assert await comms.deliver(registered) == [None]
    assert await comms.deliver(registered, registered) == [None, None]  # redelivered, twice in one batch

    async with comms.kit.db.session_scope() as db:
        contact = (await db.execute(select(Contact).where(Contact.user_id == user_id))).scalar_one()
    assert (contact.email, contact.phone, contact.name) == ("asha.rao@example.com", "+919812345678", "Asha Rao")
    (welcome,) = await comms.messages(user_id)
    assert (welcome.channel, welcome.template, welcome.source) == ("email", "welcome", "event:user.registered")

    await comms.dispatch()
    (email,) = inbox.received
    assert email["Subject"] == "Welcome to Cerebrum Biology Academy, Asha Rao"
    assert email["To"] == "asha.rao@example.com"


async def test_each_event_makes_exactly_one_message_even_when_redelivered(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(name="Asha Rao")
    course_id = uuid.uuid4()
    events = [
        event(
            "enrollment.confirmed",
            EnrollmentConfirmed(
                enrollment_id=uuid.uuid4(),
                user_id=user_id,
                course_id=course_id,
                course_title="Human Physiology",
                amount_paise=1499900,
                confirmed_at=NOW,
            ).data(),
        ),
        event(
            "payment.succeeded",
            PaymentSucceeded(
                payment_id=uuid.uuid4(),
                order_id=uuid.uuid4(),
                enrollment_id=None,
                user_id=user_id,
                course_id=course_id,
                amount_paise=1499900,
            ).data(),
        ),
        scored_test(user_id, NOW, topic="genetics", score=7.5),
    ]
    for _ in range(3):
        assert await comms.deliver(*events) == [None, None, None]
    for one in events:
        assert await comms.deliver(one) == [None]

    messages = [m for m in await comms.messages(user_id) if m.template != "welcome"]
    assert sorted(m.template or "" for m in messages) == [
        "assessment_result",
        "enrolment_confirmation",
        "payment_receipt",
    ]
    by_template = {m.template: m for m in messages}
    assert by_template["enrolment_confirmation"].subject == "You are enrolled in Human Physiology"
    assert "₹14,999.00" in by_template["payment_receipt"].body
    assert "You scored 7.5 out of 10.0 (75.0%) in genetics" in by_template["assessment_result"].body
    assert {m.dedup_key for m in messages} == {f"event:{e.id}:email" for e in events}


async def test_an_event_for_a_user_without_an_email_goes_in_app(comms: CommunicationApi) -> None:
    user_id = uuid.uuid4()
    assert await comms.deliver(scored_test(user_id, NOW)) == [None]
    (message,) = await comms.messages(user_id)
    assert (message.channel, message.body) == ("in_app", "You scored 90.0% in ecology.")


async def test_a_user_met_before_their_registration_in_one_batch_is_welcomed_by_email(
    comms: CommunicationApi,
) -> None:
    # Events of the same quarter second share a transaction: a lookup that found no contact for
    # the first must not stand once the registration stores one.
    user_id = uuid.uuid4()
    registered = UserRegistered(user_id=user_id, email="asha@example.com", full_name="Asha Rao")
    batch = [scored_test(user_id, NOW), event("user.registered", registered.data())]
    assert await comms.deliver(*batch) == [None, None]
    by_template = {m.template: m for m in await comms.messages(user_id)}
    assert by_template["assessment_result"].channel == "in_app"
    assert (by_template["welcome"].channel, by_template["welcome"].recipient) == ("email", "asha@example.com")


async def test_a_batch_about_several_people_follows_each_change_made_within_it(comms: CommunicationApi) -> None:
    # The consumer reads everyone's contact and preferences once for the batch; each message must
    # still go where the events before it in the batch said.
    moved, _ = await comms.register(email_address="old@example.com")
    quiet, _ = await comms.register(email_address="quiet@example.com")
    _, headers = comms.caller(user_id=quiet)
    assert (await comms.client.put("/notifications/preferences", json={"email": False}, headers=headers)).is_success
    newcomer = uuid.uuid4()
    updated = UserUpdated(user_id=moved, changed=["email"], email="new@example.com", full_name="Asha Rao")
    registered = UserRegistered(user_id=newcomer, email="ravi@example.com", full_name="Ravi Kumar")
    first, again, last = (
        scored_test(moved, NOW),
        scored_test(moved, NOW),
        scored_test(moved, NOW),
    )
    # A registration of someone already known (its events reordered) replaces the contact too.
    reregistered = UserRegistered(user_id=moved, email="newest@example.com", full_name="Asha Rao")
    met, welcomed = scored_test(newcomer, NOW), scored_test(newcomer, NOW)
    batch = [
        first,
        met,
        scored_test(quiet, NOW),
        event("user.updated", updated.data()),
        event("user.registered", registered.data()),
        again,
        welcomed,
        event("user.registered", reregistered.data()),
        last,
    ]
    assert await comms.deliver(*batch) == [None] * len(batch)

    def sent(messages: list[Message]) -> dict[str, tuple[str, str | None, str]]:
        return {(m.dedup_key or "").split(":")[1]: (m.channel, m.recipient, m.status) for m in messages}

    by_event = sent(await comms.messages(moved)) | sent(await comms.messages(newcomer))
    assert {e.id.hex: by_event.get(str(e.id)) for e in (first, again, last, met, welcomed)} == {
        first.id.hex: ("email", "old@example.com", "queued"),
        again.id.hex: ("email", "new@example.com", "queued"),
        last.id.hex: ("email", "newest@example.com", "queued"),
        met.id.hex: ("in_app", None, "queued"),
        welcomed.id.hex: ("email", "ravi@example.com", "queued"),
    }
    (scored,) = [m for m in await comms.messages(quiet) if m.template == "assessment_result"]
    assert (scored.channel, scored.status) == ("email", "suppressed")


async def test_a_template_the_event_cannot_fill_leaves_one_failed_message(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register()
    body = {"name": "enrolment_confirmation", "channel": "email", "subject": "Enrolled", "body": "{{ batch_code }}"}
    assert (await comms.client.post("/communication/templates", json=body, headers=comms.admin)).status_code == 201
    confirmed = EnrollmentConfirmed(
        enrollment_id=uuid.uuid4(),
        user_id=user_id,
        course_id=uuid.uuid4(),
        course_title="Botany",
        amount_paise=100,
        confirmed_at=NOW,
    )
    one = event("enrollment.confirmed", confirmed.data())
    assert await comms.deliver(one) == [None]
    assert await comms.deliver(one) == [None]
    (failed,) = [m for m in await comms.messages(user_id) if m.template == "enrolment_confirmation"]
    assert (failed.status, failed.template_version) == ("failed", 2)
    assert "batch_code" in (failed.error or "")


async def test_a_deleted_user_is_forgotten_and_their_queue_not_sent(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register()
    assert await comms.deliver(event("user.deleted", UserDeleted(user_id=user_id).data())) == [None]
    await comms.dispatch()
    (welcome,) = await comms.messages(user_id)
    assert welcome.status == "suppressed"
    async with comms.kit.db.session_scope() as db:
        assert await db.get(Contact, user_id) is None
