"""Tokens that must not work (forged, stale, revoked, replayed), at the gateway and at each service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.security.embedded import bearer
from tests.security.world import Academy, expect

# One private route per service, as alice would call it (analytics directly only: the matrix covers
# its gateway route, which the embedded platform does not serve yet).
PROTECTED = [
    ("/users/profile", True),
    ("/enrollments/student/{user_id}", True),
    ("/payments/history/{user_id}", True),
    ("/notifications/{user_id}", True),
    ("/assessments/results/{result_id}", True),
    ("/leaderboard/overall", True),
    ("/analytics/dashboard/{user_id}", False),
]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_for(a: Academy, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(a.accounts["alice"].user_id),
        "role": "student",
        "iss": a.issuer.issuer,
        "aud": a.issuer.audience,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(a: Academy, claims: dict[str, Any]) -> str:
    """Signed with the platform's real key: only the claims are wrong."""
    return jwt.encode(claims, a.issuer.private_key, algorithm="EdDSA")


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([b64(orjson.dumps(header)), b64(orjson.dumps(claims)), b64(signature)])


def hs256_with_public_key(a: Academy, public: bytes) -> str:
    """The algorithm-confusion attack: an HMAC keyed with the verifier's public key."""
    header, claims = {"alg": "HS256", "typ": "JWT"}, claims_for(a, role="admin")
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}".encode()
    return signing_input.decode() + "." + b64(hmac.new(public, signing_input, hashlib.sha256).digest())


def tampered(a: Academy) -> str:
    """Alice's real token with its payload rewritten (role admin, bob's id), the signature kept."""
    header, payload, signature = a.accounts["alice"].access.split(".")
    claims = orjson.loads(unb64(payload))
    claims.update(role="admin", sub=str(a.accounts["bob"].user_id))
    return f"{header}.{b64(orjson.dumps(claims))}.{signature}"


def forgeries(a: Academy) -> dict[str, str]:
    public_key = a.issuer.private_key.public_key()
    public_pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    now = int(time.time())
    return {
        "expired": a.issuer.issue(user_id=a.accounts["alice"].user_id, role="student", session_id=None, ttl=-60),
        "tampered payload": tampered(a),
        "wrong key": jwt.encode(claims_for(a), Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims_for(a, role="admin")),
        "alg None with signature": unsigned({"alg": "None"}, claims_for(a), b"x"),
        "HS256 keyed with the public key PEM": hs256_with_public_key(a, public_pem),
        "HS256 keyed with the raw public key": hs256_with_public_key(a, public_raw),
        "wrong audience": signed(a, claims_for(a, aud="someone-else")),
        "wrong issuer": signed(a, claims_for(a, iss="https://evil.example")),
        "no expiry": signed(a, claims_for(a, exp=None)),
        "issued in the future, expired": signed(a, claims_for(a, iat=now + 3600, exp=now - 1)),
        "unknown role": signed(a, claims_for(a, role="superuser")),
        "subject not a user id": signed(a, claims_for(a, sub="alice")),
        "truncated": a.accounts["alice"].access[:-10],
        "garbage": "not-a-jwt",
    }


def paths(a: Academy) -> list[tuple[str, str]]:
    """(label, path) of every protected route, directly and, where served, through the gateway."""
    alice, records = a.accounts["alice"], a.records["alice"]
    out = []
    for template, via_gateway in PROTECTED:
        path = template.format(user_id=alice.user_id, result_id=records.result_id)
        out.append(("direct", path))
        if via_gateway:
            out.append(("gateway", "/api" + path))
    return out


async def refused_everywhere(a: Academy, token: str) -> list[str]:
    """Where a token is not refused with a 401 problem."""
    wrong = []
    for label, path in [*paths(a), ("direct", "/courses"), ("gateway", "/api/courses")]:
        response = await a.http.get(path, headers=bearer(token))
        if response.status_code != 401 or not response.headers["content-type"].startswith("application/problem+json"):
            wrong.append(f"{label} {path}: {response.status_code}")
    return wrong


async def test_alices_real_token_works_everywhere(academy: Academy) -> None:
    for label, path in paths(academy):
        response = await academy.http.get(path, headers=academy.accounts["alice"].headers)
        assert response.status_code == 200, f"{label} {path}: {response.text[:200]}"


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "tampered payload",
        "wrong key",
        "alg none",
        "alg None with signature",
        "HS256 keyed with the public key PEM",
        "HS256 keyed with the raw public key",
        "wrong audience",
        "wrong issuer",
        "no expiry",
        "issued in the future, expired",
        "unknown role",
        "subject not a user id",
        "truncated",
        "garbage",
    ],
)
async def test_forged_or_stale_access_token_is_refused(academy: Academy, kind: str) -> None:
    wrong = await refused_everywhere(academy, forgeries(academy)[kind])
    assert not wrong, f"a {kind} token was accepted:\n" + "\n".join(wrong)


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cGFzcw==", "Bearer", "Bearer ", "Token abc", "bearer"])
async def test_malformed_authorization_header_is_refused(academy: Academy, header: str) -> None:
    for label, path in paths(academy):
        response = await academy.http.get(path, headers={"Authorization": header})
        assert response.status_code == 401, f"{label} {path} with {header!r}: {response.status_code}"


async def test_logged_out_sessions_tokens_are_refused(academy: Academy) -> None:
    session = await academy.fresh_session(academy.accounts["alice"])
    assert (await academy.http.get("/api/users/profile", headers=session.headers)).status_code == 200
    expect(await academy.http.post("/api/auth/logout", headers=session.headers), 204)
    wrong = await refused_everywhere(academy, session.access)
    assert not wrong, "a logged-out session's access token still works:\n" + "\n".join(wrong)
    for path in ("/auth/refresh", "/api/auth/refresh"):
        response = await academy.http.post(path, json={"refresh_token": session.refresh})
        assert response.status_code == 401, f"{path}: the logged-out session's refresh token still works"
    other = await academy.http.get("/users/profile", headers=academy.accounts["alice"].headers)
    assert other.status_code == 200, "logging out one session signed out alice's other sessions"


async def test_deleted_accounts_tokens_are_refused(academy: Academy) -> None:
    carol = await academy.register(f"carol{academy.serial()}")
    second = await academy.fresh_session(carol)
    expect(await academy.http.delete("/users/account", headers=carol.headers), 204)
    for session in (carol, second):
        # A live token of carol's would get 403 at alice's paths and 200 at /courses: only 401 will do.
        wrong = await refused_everywhere(academy, session.access)
        assert not wrong, "a deleted account's access token still works:\n" + "\n".join(wrong)
        for path in ("/auth/refresh", "/api/auth/refresh"):
            response = await academy.http.post(path, json={"refresh_token": session.refresh})
            assert response.status_code == 401, f"{path}: a deleted account's refresh token still works"
    login = await academy.http.post("/api/auth/login", json={"email": carol.email, "password": carol.password})
    assert login.status_code == 401, "a deleted account can log in again"


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["direct", "gateway"])
async def test_reused_refresh_token_is_refused_and_revokes_its_family(academy: Academy, prefix: str) -> None:
    session = await academy.fresh_session(academy.accounts["alice"])
    rotated = expect(await academy.http.post(prefix + "/auth/refresh", json={"refresh_token": session.refresh}), 200)
    assert rotated["refresh_token"] != session.refresh, "the refresh token was not rotated"
    reused = await academy.http.post(prefix + "/auth/refresh", json={"refresh_token": session.refresh})
    assert reused.status_code == 401, f"a used refresh token was accepted again: {reused.text[:200]}"
    # Theft detection: the thief's (or the victim's) newer tokens of that family stop working too.
    newer = await academy.http.post(prefix + "/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newer.status_code == 401, "the rotated refresh token survived the reuse of its parent"
    wrong = await refused_everywhere(academy, rotated["access_token"])
    assert not wrong, "the family's access token survived the reuse:\n" + "\n".join(wrong)
    for bogus in ("", "x" * 64, session.refresh + "x"):
        response = await academy.http.post(prefix + "/auth/refresh", json={"refresh_token": bogus})
        assert response.status_code in (401, 422), f"refresh with {bogus[:10]!r}: {response.status_code}"
