"""Profiles, account deletion and access rules against the real PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.users.models import AuthLog, Session, User, UserProfile
from tests.services.users.conftest import UsersApi

pytestmark = pytest.mark.integration


async def test_profile_needs_a_token(users: UsersApi) -> None:
    response = await users.client.get("/users/profile")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    tampered = await users.client.get("/users/profile", headers={"Authorization": "Bearer e30.e30.sig"})
    assert tampered.status_code == 401


async def test_update_changes_only_the_fields_sent(users: UsersApi) -> None:
    tokens = await users.signed_in("update@example.com")
    response = await users.client.put(
        "/users/profile", headers=users.bearer(tokens), json={"city": "Pune", "grade": "repeater"}
    )
    assert response.status_code == 200
    profile = response.json()["profile"]
    assert profile["city"] == "Pune" and profile["grade"] == "repeater" and profile["full_name"] == "Asha Rao"
    again = await users.client.get("/users/profile", headers=users.bearer(tokens))
    assert again.json()["profile"]["city"] == "Pune"


async def test_invalid_profile_update_changes_nothing(users: UsersApi) -> None:
    tokens = await users.signed_in("strict@example.com")
    response = await users.client.put(
        "/users/profile", headers=users.bearer(tokens), json={"city": "Delhi", "phone": "call me maybe", "grade": "9"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"phone", "grade"}
    profile = (await users.client.get("/users/profile", headers=users.bearer(tokens))).json()["profile"]
    assert profile["city"] is None


async def test_a_student_cannot_read_another_students_account(users: UsersApi) -> None:
    asha = await users.signed_in("asha@example.com")
    ravi = await users.signed_in("ravi@example.com")
    ravi_id = (await users.client.get("/users/profile", headers=users.bearer(ravi))).json()["id"]
    response = await users.client.get(f"/users/{ravi_id}", headers=users.bearer(asha))
    assert response.status_code == 403
    own = await users.client.get(f"/users/{ravi_id}", headers=users.bearer(ravi))
    assert own.status_code == 200


async def test_deleting_the_account_anonymises_it_and_revokes_every_session(users: UsersApi) -> None:
    tokens = await users.signed_in("leaving@example.com")
    other_device = (await users.login("leaving@example.com")).json()
    user_id = uuid.UUID((await users.client.get("/users/profile", headers=users.bearer(tokens))).json()["id"])

    assert (await users.client.delete("/users/account", headers=users.bearer(tokens))).status_code == 204

    assert (await users.client.get("/users/profile", headers=users.bearer(other_device))).status_code == 401
    refresh = await users.client.post("/auth/refresh", json={"refresh_token": other_device["refresh_token"]})
    assert refresh.status_code == 401
    assert (await users.login("leaving@example.com")).status_code == 401
    async with users.app.state.kit.db.session_scope() as db:
        user = await db.get(User, user_id)
        profile = await db.get(UserProfile, user_id)
        logged_emails = (await db.execute(select(AuthLog.email).where(AuthLog.user_id == user_id))).scalars().all()
        clients = (
            await db.execute(select(Session.client_ip, Session.user_agent).where(Session.user_id == user_id))
        ).all()
    assert user is not None and user.status == "deleted" and "leaving" not in user.email
    assert profile is not None and profile.full_name is None
    assert all(email is None for email in logged_emails)
    assert clients and all(client == (None, None) for client in clients), "where the sessions were used from"
    # The address is free again for a new account.
    assert (await users.register("leaving@example.com")).status_code == 201


async def test_registration_and_deletion_are_announced_through_the_outbox(users: UsersApi) -> None:
    from services.users.models import OUTBOX

    tokens = await users.signed_in("announced@example.com")
    async with users.app.state.kit.db.session_scope() as db:
        (registered,) = (await db.execute(select(OUTBOX.c.payload))).scalars().all()
    assert registered["data"]["email"] == "announced@example.com"
    await users.client.delete("/users/account", headers=users.bearer(tokens))
    async with users.app.state.kit.db.session_scope() as db:
        rows = (await db.execute(select(OUTBOX.c.event_type, OUTBOX.c.payload).order_by(OUTBOX.c.created_at))).all()
    assert [r.event_type for r in rows] == ["user.registered", "user.deleted"]
    # The announcement stays (for the relay's reconciliation), but no longer names the person.
    data = rows[0].payload["data"]
    assert data["email"].endswith("@deleted.invalid") and data["full_name"] is None


async def test_a_profile_change_others_copy_is_announced_with_the_contact_as_it_is_now(users: UsersApi) -> None:
    from services.contracts.events import UserUpdated
    from services.users.models import OUTBOX

    tokens = await users.signed_in("changing@example.com")
    headers = users.bearer(tokens)
    assert (await users.client.put("/users/profile", headers=headers, json={"city": "Pune"})).status_code == 200
    same = await users.client.put("/users/profile", headers=headers, json={"full_name": "Asha Rao"})
    assert same.status_code == 200
    changed = await users.client.put(
        "/users/profile", headers=headers, json={"phone": "+919876543210", "full_name": "Asha R. Rao"}
    )
    assert changed.status_code == 200
    async with users.app.state.kit.db.session_scope() as db:
        rows = (
            (
                await db.execute(
                    select(OUTBOX.c.payload).where(OUTBOX.c.event_type == "user.updated").order_by(OUTBOX.c.created_at)
                )
            )
            .scalars()
            .all()
        )
    # Neither the city (kept only here) nor a name set to what it was is news to anyone.
    (only,) = rows
    updated = UserUpdated.model_validate(only["data"])
    assert sorted(updated.changed) == ["full_name", "phone"]
    assert (updated.email, updated.full_name, updated.phone) == ("changing@example.com", "Asha R. Rao", "+919876543210")


async def test_a_refused_registration_announces_nothing(users: UsersApi) -> None:
    from services.users.models import OUTBOX

    await users.register("weak@example.com", password="short")
    async with users.app.state.kit.db.session_scope() as db:
        assert (await db.execute(select(OUTBOX.c.id))).first() is None


async def test_published_events_keep_their_contracts(users: UsersApi) -> None:
    from services.contracts.events import parse
    from services.users.models import OUTBOX

    tokens = await users.signed_in("contract@example.com")
    await users.client.delete("/users/account", headers=users.bearer(tokens))
    async with users.app.state.kit.db.session_scope() as db:
        rows = (await db.execute(select(OUTBOX.c.event_type, OUTBOX.c.payload))).all()
    assert sorted(row.event_type for row in rows) == ["user.deleted", "user.registered"]
    for row in rows:
        parse(row.event_type, row.payload["data"])
