"""Access tokens the gateway has verified, remembered until they expire.

A student sends the same access token with every request for its whole life (15 minutes by
default); checking its Ed25519 signature again each time was the largest single cost of a
request through the gateway. Once a token has passed the verifier, the only claim that can turn
it invalid later is ``exp`` (``iat`` and ``nbf`` only ever become more valid), so it is answered
from here until then, with exactly the verifier's rule (``exp <= now`` is expired). A token that
fails is never remembered: it is checked, and refused, every time. Revocation is not the
gateway's concern (the services check the session on every call), as before.
"""

from __future__ import annotations

import base64
import time

import orjson

from services.kit.auth import Identity, TokenVerifier


def _expiry(token: str) -> int | None:
    """The ``exp`` claim of a token whose signature has already been verified."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


class VerifiedTokens:
    """A bounded map from verified token to its identity and expiry."""

    def __init__(self, verifier: TokenVerifier, *, capacity: int = 20_000) -> None:
        self.verifier = verifier
        self.capacity = capacity
        self._known: dict[str, tuple[Identity, int]] = {}

    def verify(self, token: str) -> Identity:
        """The token's identity; raises Unauthorized exactly when the verifier would."""
        known = self._known.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            self._known.pop(token, None)
        identity = self.verifier.verify(token)
        expiry = _expiry(token)
        if expiry is not None:
            if len(self._known) >= self.capacity:
                self._known.clear()
            self._known[token] = (identity, expiry)
        return identity
