"""The contact copy follows user.updated; user.deleted leaves nothing that names or reaches the person."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.communication import repository
from services.communication.models import Contact, DeliveryStatus, Message, OptOut
from services.communication.people import SCRUBBED_BODY
from services.contracts.events import UserDeleted, UserUpdated
from tests.services.communication.conftest import CommunicationApi, event

pytestmark = pytest.mark.integration


def updated(user_id: uuid.UUID, email: str, **fields: str | None) -> UserUpdated:
    return UserUpdated(user_id=user_id, changed=sorted(fields), email=email, **fields)


async def _whatsapp(comms: CommunicationApi, user_id: uuid.UUID) -> int:
    body = {"user_id": str(user_id), "body": "Your class starts at 5 pm"}
    response = await comms.client.post("/whatsapp/send-message", json=body, headers=comms.admin)
    return response.status_code


async def test_a_phone_added_after_sign_up_reaches_whatsapp_and_a_new_name_greets(comms: CommunicationApi) -> None:
    user_id, address = await comms.register(name="Asha Rao")
    assert await _whatsapp(comms, user_id) == 422, "no phone is known yet"

    phone_added = updated(user_id, address, full_name="Asha Rao", phone="+919812345678")
    assert await comms.deliver(event("user.updated", phone_added.data())) == [None]
    assert await _whatsapp(comms, user_id) == 202

    renamed = updated(user_id, address, full_name="Asha Iyer", phone="+919812345678")
    assert await comms.deliver(event("user.updated", renamed.data())) == [None]
    response = await comms.notify(user_id, "welcome", {})
    assert response.status_code == 202, response.text
    sent = [await comms.message(m["id"]) for m in response.json()["messages"]]
    assert sent and all("Asha Iyer" in m.body for m in sent), [m.body for m in sent]


async def _an_update_keeps_what_it_does_not_send(comms: CommunicationApi) -> None:
    user_id = uuid.uuid4()
    async with comms.kit.db.session_scope() as db:
        await repository.save_contact(db=db, user_id=user_id, email="asha@example.com", phone=None, name="Asha Rao")
    async with comms.kit.db.session_scope() as db:
        await repository.save_contact(db=db, user_id=user_id, email=None, phone="+919812345678", name=None)
    async with comms.kit.db.session_scope() as db:
        contact = await db.get(Contact, user_id)
    assert contact is not None
    assert (contact.email, contact.phone, contact.name) == ("asha@example.com", "+919812345678", "Asha Rao")


async def test_a_contact_update_keeps_the_fields_it_does_not_send(comms: CommunicationApi) -> None:
    await _an_update_keeps_what_it_does_not_send(comms)


async def test_a_contact_update_keeps_the_fields_it_does_not_send_on_sqlite(embedded_comms: CommunicationApi) -> None:
    await _an_update_keeps_what_it_does_not_send(embedded_comms)


async def test_an_update_after_the_deletion_does_not_bring_the_person_back(comms: CommunicationApi) -> None:
    user_id, address = await comms.register()
    assert await comms.deliver(event("user.deleted", UserDeleted(user_id=user_id).data())) == [None]
    late = updated(user_id, address, full_name="Asha Rao", phone="+919812345678")
    assert await comms.deliver(event("user.updated", late.data())) == [None]
    async with comms.kit.db.session_scope() as db:
        assert await db.get(Contact, user_id) is None


async def test_a_deleted_users_messages_and_opt_outs_no_longer_name_or_reach_them(comms: CommunicationApi) -> None:
    user_id, address = await comms.register(name="Asha Rao", phone="+919812345678")
    assert await _whatsapp(comms, user_id) == 202
    await comms.dispatch()  # the welcome and the WhatsApp message go out
    # A message sent to the address directly, not to the user id, also reached them.
    direct = {"to": address, "subject": "For Asha Rao", "body": "Dear Asha Rao, see you on Monday"}
    assert (await comms.client.post("/email/send", json=direct, headers=comms.admin)).status_code == 202
    async with comms.kit.db.session_scope() as db:
        db.add(OptOut(channel="sms", address="+919812345678", user_id=user_id, reason="stop"))

    assert await comms.deliver(event("user.deleted", UserDeleted(user_id=user_id).data())) == [None]

    async with comms.kit.db.session_scope() as db:
        messages = (await db.execute(select(Message))).scalars().all()
        steps = (await db.execute(select(DeliveryStatus.detail))).scalars().all()
        opt_outs = (await db.execute(select(OptOut))).scalars().all()
    assert len(messages) == 3
    for message in messages:
        assert (message.recipient, message.subject, message.body) == (None, None, SCRUBBED_BODY)
        assert message.status in ("sent", "delivered", "suppressed")
    text = " ".join(str(s) for s in steps)
    assert "Asha" not in text and address not in text and "9812345678" not in text
    assert opt_outs == []
