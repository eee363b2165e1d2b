"""The users service's rules for secrets: password strength and hashing, refresh tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.kit.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
_COMMON = {
    "password123",
    "password1234",
    "qwerty12345",
    "1234567890",
    "iloveyou123",
    "letmein1234",
    "welcome1234",
    "biology123",
    "cerebrum123",
    "neet2026pass",
    "admin12345",
}


def check_password_strength(password: str, *, email: str) -> None:
    """Refuses passwords that are short, single-class, common, or built from the email."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"[^A-Za-z]", password):
        problems.append("letters and at least one digit or symbol")
    if password.lower() in _COMMON:
        problems.append("not a commonly used password")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        problems.append("not containing your email address")
    if problems:
        raise InvalidInput(
            "The password is too weak: it needs " + "; ".join(problems),
            errors=[{"field": "password", "message": p} for p in problems],
        )


class Passwords:
    """argon2id hashing; verification also tells when a stored hash needs upgrading."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Verified against when the account does not exist, so both paths cost the same.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


UNUSABLE_PASSWORD = "!"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored as SHA-256 digests: high-entropy, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()
