"""JWT access tokens: signed by the users service (Ed25519), verified by every service.

Asymmetric keys mean a service that only verifies holds no key that could mint a token.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from observability.metrics import counter
from services.kit.errors import Forbidden, Unauthorized
from services.kit.settings import ServiceSettings

ALGORITHM = "EdDSA"
Role = Literal["student", "admin", "service"]
SERVICE_NAMESPACE = uuid.UUID("5b7c1c7e-3f1e-4d0a-9a57-0c0e0b0e0000")  # ids of service callers
REVOCATION_SKIPPED = counter(
    "cerebrum_auth_revocation_check_skipped_total",
    "Authenticated requests let through without the session-revocation check because Redis was down.",
    ("service",),
)


@dataclass(frozen=True)
class Identity:
    """Who is calling, as proven by a verified access token."""

    user_id: uuid.UUID
    role: Role
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """An admin, or another service acting for the platform (the enrolment saga, a consumer)."""
        return self.role in ("admin", "service")

    def require_self_or_admin(self, user_id: uuid.UUID) -> None:
        """Refuses a student acting on another student's data."""
        if not self.is_admin and self.user_id != user_id:
            raise Forbidden("You can only access your own records")


def _dev_key_path(settings: ServiceSettings) -> Path:
    return Path(settings.data_dir) / "keys" / "jwt-ed25519.pem"


def _load_or_create_dev_key(settings: ServiceSettings) -> Ed25519PrivateKey:
    path = _dev_key_path(settings)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def generate_key_pair() -> tuple[str, str]:
    """Returns a new (private PEM, public PEM) pair for JWT_PRIVATE_KEY / JWT_PUBLIC_KEY."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class TokenVerifier:
    """Verifies access tokens: signature, algorithm, expiry, issuer and audience.

    A student sends the same access token with every request for its whole life (15 minutes by
    default), and each request meets a verifier twice (the gateway's and the service's): checking
    its Ed25519 signature each time was the largest single cost of a cheap read in both. Once a
    token has passed, the only claim that can make it invalid later is ``exp`` (``iat`` and ``nbf``
    only ever become more valid), so it is answered from memory until then, with the same rule
    (``exp <= now`` is expired). A token that fails is never remembered. Revocation is checked
    per request elsewhere (``kit.revocations``: the signed-out sessions, followed in memory).
    """

    capacity = 20_000

    def __init__(self, settings: ServiceSettings) -> None:
        self._known: dict[str, tuple[Identity, int]] = {}
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        if settings.jwt_public_key:
            key = serialization.load_pem_public_key(settings.jwt_public_key.encode())
            assert isinstance(key, Ed25519PublicKey)
            self.public_key = key
        elif settings.jwt_private_key:
            private = serialization.load_pem_private_key(
                settings.jwt_private_key.get_secret_value().encode(), password=None
            )
            assert isinstance(private, Ed25519PrivateKey)
            self.public_key = private.public_key()
        else:
            self.public_key = _load_or_create_dev_key(settings).public_key()

    def verify(self, token: str) -> Identity:
        """The token's identity; raises Unauthorized when the token is not (or no longer) valid."""
        known = self._known.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            del self._known[token]
        identity, expiry = self._check(token)
        if len(self._known) >= self.capacity:
            self._known.clear()
        self._known[token] = (identity, expiry)
        return identity

    def _check(self, token: str) -> tuple[Identity, int]:
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired; refresh it") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is not valid") from exc
        role = claims.get("role")
        if role not in ("student", "admin", "service"):
            raise Unauthorized("The access token carries no known role")
        try:
            user_id = uuid.UUID(claims["sub"])
        except ValueError as exc:
            raise Unauthorized("The access token is not valid") from exc
        return Identity(user_id=user_id, role=role, session_id=claims.get("sid")), int(claims["exp"])


class TokenIssuer:
    """Signs access tokens; only the users service builds one."""

    def __init__(self, settings: ServiceSettings) -> None:
        if settings.jwt_private_key:
            key = serialization.load_pem_private_key(
                settings.jwt_private_key.get_secret_value().encode(), password=None
            )
            assert isinstance(key, Ed25519PrivateKey)
            self.private_key = key
        else:
            self.private_key = _load_or_create_dev_key(settings)
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        role: Role,
        session_id: str | None,
        ttl: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            **(extra or {}),
            "sub": str(user_id),
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + (self.ttl if ttl is None else ttl),
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = session_id
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM)


class ServiceTokens:
    """Short-lived tokens a service presents when it calls another for the platform, not for a student.

    Only a service holding JWT_PRIVATE_KEY can mint them (the users service, and the orchestrators
    given the key); they carry role ``service`` and the caller's name.
    """

    def __init__(self, issuer: TokenIssuer, service: str, ttl: int = 300) -> None:
        self.issuer = issuer
        self.user_id = uuid.uuid5(SERVICE_NAMESPACE, service)
        self.service = service
        self.ttl = ttl
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        now = time.time()
        if self._token is None or now > self._expires - 30:
            self._token = self.issuer.issue(
                user_id=self.user_id, role="service", session_id=None, ttl=self.ttl, extra={"svc": self.service}
            )
            self._expires = now + self.ttl
        return self._token


def bearer_token(authorization: str | None) -> str:
    """Extracts the token from an ``Authorization: Bearer`` header."""
    if not authorization:
        raise Unauthorized("Send an access token: Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an access token: Authorization: Bearer <token>")
    return token.strip()


def require_admin(identity: Identity) -> Identity:
    if not identity.is_admin:
        raise Forbidden("This action is for admins only")
    return identity


def revoked_session_key(settings: ServiceSettings, session_id: str | uuid.UUID) -> str:
    """Where a revoked session id is remembered until its last access token has expired."""
    return settings.redis_key_prefix + f"revoked-session:{session_id}"
