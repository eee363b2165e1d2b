"""What answers must never contain, and the fields a student must not be able to set."""

from __future__ import annotations

import uuid

import pytest

from tests.security.world import Academy, expect

PREFIXES = pytest.mark.parametrize("prefix", ["", "/api"], ids=["direct", "gateway"])


@PREFIXES
async def test_a_draft_course_is_seen_by_admins_only(academy: Academy, prefix: str) -> None:
    draft = await academy.new_course(published=False)
    admin, alice = academy.accounts["admin"], academy.accounts["alice"]
    assert (await academy.http.get(f"{prefix}/courses/{draft}", headers=admin.headers)).status_code == 200
    for headers in ({}, alice.headers):
        assert (await academy.http.get(f"{prefix}/courses/{draft}", headers=headers)).status_code == 404
        listed = expect(await academy.http.get(f"{prefix}/courses", params={"limit": 100}, headers=headers), 200)
        assert draft not in {c["id"] for c in listed["items"]}
        found = expect(
            await academy.http.get(f"{prefix}/courses/search", params={"q": "security"}, headers=headers), 200
        )
        assert draft not in {c["id"] for c in found["items"]}
    enrol = await academy.http.post(f"{prefix}/enrollments", json={"course_id": draft}, headers=alice.headers)
    assert enrol.status_code in (404, 409, 422), f"a student enrolled in a draft course: {enrol.status_code}"


@PREFIXES
async def test_questions_drawn_by_a_student_carry_no_answers(academy: Academy, prefix: str) -> None:
    drawn = expect(
        await academy.http.get(
            f"{prefix}/questions/random",
            params={"topic": "genetics", "count": 5, "attempt_id": str(uuid.uuid4())},
            headers=academy.accounts["alice"].headers,
        ),
        200,
    )
    assert drawn["questions"]
    for question in drawn["questions"]:
        leaked = {"correct_option", "rubric", "explanation", "rating"} & set(question)
        assert not leaked, f"a student's question shows {leaked}"


@PREFIXES
async def test_stored_payment_methods_never_come_back(academy: Academy, prefix: str) -> None:
    alice = academy.accounts["alice"]
    token = f"tok_{uuid.uuid4().hex}"
    body = {"kind": "card", "token": token, "brand": "visa", "last4": "4242", "expiry_month": 1, "expiry_year": 2031}
    saved = await academy.http.post(f"{prefix}/payments/methods", json=body, headers=alice.headers)
    listed = await academy.http.get(f"{prefix}/payments/methods", headers=alice.headers)
    for response in (saved, listed):
        assert response.status_code in (200, 201)
        assert token not in response.text and "ciphertext" not in response.text


async def test_profile_answers_hold_no_credentials(academy: Academy) -> None:
    alice = academy.accounts["alice"]
    for path in ("/users/profile", f"/users/{alice.user_id}", "/api/users/profile"):
        text = (await academy.http.get(path, headers=alice.headers)).text
        assert "password" not in text and "hash" not in text and "argon2" not in text, path
    login = await academy.http.post("/auth/login", json={"email": alice.email, "password": alice.password})
    assert "password" not in login.text


@PREFIXES
async def test_a_student_cannot_give_themselves_privileges(academy: Academy, prefix: str) -> None:
    alice = academy.accounts["alice"]
    email = f"mallory.{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "Cytoplasm-Streaming-8", "full_name": "Mallory"}
    for extra in ({"role": "admin"}, {"status": "active", "role": "service"}, {"id": str(alice.user_id)}):
        response = await academy.http.post(f"{prefix}/auth/register", json={**body, **extra})
        assert response.status_code == 422, f"register took {sorted(extra)}: {response.status_code}"
    for extra in ({"role": "admin"}, {"email": "taken@example.com"}, {"id": str(uuid.uuid4())}):
        response = await academy.http.put(f"{prefix}/users/profile", json=extra, headers=alice.headers)
        assert response.status_code == 422, f"a profile update took {sorted(extra)}: {response.status_code}"
    profile = expect(await academy.http.get(f"{prefix}/users/profile", headers=alice.headers), 200)
    assert (profile["role"], profile["email"], profile["id"]) == ("student", alice.email, str(alice.user_id))
