"""Registration, login, token rotation and logout against the real PostgreSQL and Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from services.users.models import AuthLog, Session, User
from tests.conftest import REDIS_URL
from tests.services.users.conftest import STRONG_PASSWORD, UsersApi

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


async def test_register_normalises_email_and_returns_the_profile(users: UsersApi) -> None:
    response = await users.register("  Asha.Rao@Example.COM ", grade="12", target_exam="NEET")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "asha.rao@example.com"
    assert body["role"] == "student"
    assert body["profile"] == {
        "full_name": "Asha Rao",
        "phone": None,
        "grade": "12",
        "target_exam": "NEET",
        "city": None,
        "school": None,
    }
    assert "password" not in response.text and "hash" not in response.text


@pytest.mark.parametrize(
    ("password", "needs"),
    [
        ("short1!", "at least 10 characters"),
        ("onlylettersherE", "digit or symbol"),
        ("password123", "commonly used"),
        ("ashasecret-2024", "email"),
    ],
)
async def test_weak_passwords_are_refused_with_the_reason(users: UsersApi, password: str, needs: str) -> None:
    response = await users.register("ashasecret@example.com", password=password)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert needs in response.json()["detail"]
    async with users.app.state.kit.db.session_scope() as db:
        assert (await db.execute(select(func.count()).select_from(User))).scalar_one() == 0


async def test_bad_email_and_unknown_fields_are_refused(users: UsersApi) -> None:
    bad_email = await users.register("not-an-email")
    assert bad_email.status_code == 422
    assert bad_email.json()["errors"][0]["field"] == "email"
    extra = await users.client.post(
        "/auth/register",
        json={"email": "a@example.com", "password": STRONG_PASSWORD, "full_name": "A", "role": "admin"},
    )
    assert extra.status_code == 422, "a student must not be able to register as admin"


async def test_duplicate_email_is_a_conflict_whatever_its_case(users: UsersApi) -> None:
    assert (await users.register("ravi@example.com")).status_code == 201
    duplicate = await users.register("RAVI@example.com")
    assert duplicate.status_code == 409
    assert duplicate.json()["type"].endswith("/conflict")


async def test_login_returns_oauth_token_fields_and_the_token_opens_the_profile(users: UsersApi) -> None:
    tokens = await users.signed_in("meera@example.com")
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    profile = await users.client.get("/users/profile", headers=users.bearer(tokens))
    assert profile.status_code == 200
    assert profile.json()["email"] == "meera@example.com"


async def test_wrong_password_and_unknown_account_get_the_same_answer(users: UsersApi) -> None:
    await users.register("kiran@example.com")
    wrong = await users.login("kiran@example.com", "Wrong-password-1")
    unknown = await users.login("nobody@example.com", "Wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_twenty_quick_bad_logins_get_429s_and_twenty_audit_rows(users: UsersApi) -> None:
    await users.register("target@example.com")
    statuses = [(await users.login("target@example.com", f"Guess-{i:04d}")).status_code for i in range(20)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 15
    limited = await users.login("target@example.com", "Guess-9999")
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["content-type"] == PROBLEM
    async with users.app.state.kit.db.session_scope() as db:
        rows = (await db.execute(select(AuthLog).where(AuthLog.event == "login"))).scalars().all()
    assert len(rows) == 21
    assert sorted({r.outcome for r in rows}) == ["failure", "rate_limited"]
    assert all(r.email == "target@example.com" and r.client_ip == "203.0.113.7" for r in rows)


async def test_the_limiter_keys_name_no_one(users: UsersApi, redis_prefix: str) -> None:
    await users.register("private.person@example.com")
    for _ in range(3):
        await users.login("private.person@example.com", "Not-it-12345")
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"*{redis_prefix}*", count=500)]
    finally:
        await client.aclose()
    assert any("login-account" in key for key in keys), keys
    assert not [key for key in keys if "private.person" in key], "an account's limiter key carries its e-mail"


async def test_even_the_right_password_waits_out_the_limit(users: UsersApi) -> None:
    await users.register("patient@example.com")
    for _ in range(5):
        await users.login("patient@example.com", "Not-it-12345")
    assert (await users.login("patient@example.com")).status_code == 429


async def test_refresh_rotates_and_the_old_token_stops_working(users: UsersApi) -> None:
    first = await users.signed_in("neha@example.com")
    rotated = await users.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    third = await users.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_a_rotated_refresh_token_used_twice_kills_the_whole_family(users: UsersApi) -> None:
    first = await users.signed_in("theft@example.com")
    second = (await users.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()

    replay = await users.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]

    # The thief's replay also revokes what the legitimate holder had rotated to.
    legit = await users.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert legit.status_code == 401
    stale_access = await users.client.get("/users/profile", headers=users.bearer(second))
    assert stale_access.status_code == 401
    async with users.app.state.kit.db.session_scope() as db:
        sessions = (await db.execute(select(Session))).scalars().all()
    assert len(sessions) == 2 and all(s.revoked_reason == "reuse_detected" for s in sessions)


async def test_refresh_tokens_are_stored_only_as_digests(users: UsersApi) -> None:
    tokens = await users.signed_in("digest@example.com")
    async with users.app.state.kit.db.session_scope() as db:
        stored = (await db.execute(select(Session.token_hash))).scalars().all()
    assert tokens["refresh_token"] not in stored and len(stored[0]) == 64


async def test_logout_revokes_the_refresh_token_and_the_access_token(users: UsersApi) -> None:
    tokens = await users.signed_in("bye@example.com")
    assert (await users.client.post("/auth/logout", headers=users.bearer(tokens))).status_code == 204
    assert (await users.client.get("/users/profile", headers=users.bearer(tokens))).status_code == 401
    refresh = await users.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_garbage_refresh_token_is_refused(users: UsersApi) -> None:
    response = await users.client.post("/auth/refresh", json={"refresh_token": "not-a-token"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
