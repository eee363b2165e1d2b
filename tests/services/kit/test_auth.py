"""Access tokens: only genuine, unexpired Ed25519 tokens from our issuer are accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.auth import TokenIssuer, TokenVerifier, generate_key_pair
from services.kit.errors import Unauthorized
from services.kit.settings import ServiceSettings


def _settings(tmp_path: Path, **kw: object) -> ServiceSettings:
    private, public = generate_key_pair()
    return ServiceSettings(data_dir=tmp_path, jwt_private_key=private, jwt_public_key=public, **kw)  # type: ignore[arg-type]


def test_issued_tokens_verify_to_the_same_identity(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    user_id = uuid.uuid4()
    token = TokenIssuer(settings).issue(user_id=user_id, role="admin", session_id="fam-1")
    identity = TokenVerifier(settings).verify(token)
    assert identity.user_id == user_id and identity.is_admin and identity.session_id == "fam-1"


@pytest.mark.parametrize("attack", ["alg_none", "hs256_with_public_key", "other_key", "expired", "tampered"])
def test_forged_tokens_are_refused(tmp_path: Path, attack: str) -> None:
    settings = _settings(tmp_path)
    verifier = TokenVerifier(settings)
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 60,
    }
    if attack == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    elif attack == "hs256_with_public_key":
        # The classic confusion attack: sign with HMAC, using the public key as the secret.
        b64 = jwt.utils.base64url_encode
        signing_input = (
            b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(json.dumps(claims).encode())
        )
        mac = hmac.new((settings.jwt_public_key or "").encode(), signing_input, hashlib.sha256).digest()
        token = (signing_input + b"." + b64(mac)).decode()
    elif attack == "other_key":
        token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    elif attack == "expired":
        token = TokenIssuer(settings.model_copy(update={"access_token_ttl_seconds": -10})).issue(
            user_id=uuid.uuid4(), role="student", session_id="s"
        )
    else:
        good = TokenIssuer(settings).issue(user_id=uuid.uuid4(), role="student", session_id="s")
        header, payload, signature = good.split(".")
        forged = jwt.utils.base64url_encode(jwt.utils.base64url_decode(payload).replace(b"student", b"admin\x20\x20"))
        token = f"{header}.{forged.decode()}.{signature}"
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_it_expires_and_its_forgeries_never_pass(tmp_path: Path) -> None:
    settings = _settings(tmp_path, access_token_ttl_seconds=2)
    verifier = TokenVerifier(settings)
    token = TokenIssuer(settings).issue(user_id=uuid.uuid4(), role="student", session_id="s")
    assert verifier.verify(token).role == "student"
    assert verifier.verify(token).role == "student"  # answered from memory

    header, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(jwt.utils.base64url_decode(payload).replace(b"student", b"admin\x20\x20"))
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{forged.decode()}.{signature}")

    time.sleep(2.1)  # past its two-second life
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_development_keys_are_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path)
    token = TokenIssuer(settings).issue(user_id=uuid.uuid4(), role="student", session_id="s")
    assert TokenVerifier(ServiceSettings(data_dir=tmp_path)).verify(token).role == "student"
    key_file = tmp_path / "keys" / "jwt-ed25519.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_service_tokens_carry_the_service_role_and_are_reused_until_near_expiry(tmp_path: Path) -> None:
    from services.kit.auth import ServiceTokens

    settings = _settings(tmp_path)
    tokens = ServiceTokens(TokenIssuer(settings), "enrollments")
    first = tokens.token()
    assert tokens.token() == first
    identity = TokenVerifier(settings).verify(first)
    assert identity.role == "service" and identity.is_admin and identity.session_id is None
