"""Keeps passwords, tokens, authorization headers, card numbers and full emails out of telemetry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authorization|auth_header|cookie|api[_-]?key|private[_-]?key"
    r"|card(_?number)?$|^pan$|cvv|cvc|signature",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w\-.~+/=]{6,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# What each of the patterns above needs at the least, to skip text none of them can change. The
# digit run is the card pattern's own minimum (13 digits, single separators allowed) and the
# bearer check is as case-blind as _BEARER: spaced card numbers and an upper-case "BEARER" went
# through unredacted when the filter was "\d{6}" and "[Bb]earer".
_BEARER_HINT = re.compile(r"(?i)b(?:earer|asic)")
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return f"[CARD ****{digits[-4:]}]"
    return match.group(0)


def mask_email(email: str) -> str:
    """Masks an email to its first letter and domain: ``a***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", email)


def _may_hold_secret(text: str) -> bool:
    return "@" in text or "eyJ" in text or _BEARER_HINT.search(text) is not None or _DIGIT_RUN.search(text) is not None


# Short texts known to hold nothing to redact (user ids, client addresses, paths seen before):
# only texts left unchanged are kept, so no secret is ever held here.
_clean: dict[str, None] = {}
_CLEAN_MAX, _CLEAN_LEN = 8192, 256


def redact_text(text: str) -> str:
    """Removes secrets that can be recognised by their shape from free text."""
    if text in _clean:
        return text
    redacted = text
    if _may_hold_secret(text):
        redacted = _JWT.sub(REDACTED, redacted)
        redacted = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", redacted)
        redacted = _CARD.sub(_mask_card, redacted)
        redacted = mask_email(redacted)
    if redacted == text and len(text) <= _CLEAN_LEN:
        if len(_clean) >= _CLEAN_MAX:
            _clean.clear()
        _clean[text] = None
    return redacted


# Fields our own code fills with values that cannot hold a secret; skipped on the hot path.
_SAFE_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "event",
        "service",
        "trace_id",
        "span_id",
        "request_id",
        "route",
        "method",
        "status",
        "duration_ms",
        "logger",
    }
)
_secret_key_cache: dict[str, bool] = {}


def _is_secret_key(key: str) -> bool:
    found = _secret_key_cache.get(key)
    if found is None:
        found = bool(_SECRET_KEY.search(key))
        if len(_secret_key_cache) < 4096:
            _secret_key_cache[key] = found
    return found


def redact(value: Any, key: str | None = None) -> Any:
    """Returns value with secrets removed: by the key they sit under, or by their shape."""
    if key is not None and _is_secret_key(key):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


_PLAIN = frozenset({int, float, bool, type(None)})


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor applying :func:`redact` to every field of a log line."""
    for key, value in event_dict.items():
        if key in _SAFE_KEYS:
            continue
        kind = value.__class__
        if kind is str:
            # redact() for a string, inlined: most fields are neither under a secret key nor
            # shaped like a secret, and are left as they are after a lookup or two.
            if _is_secret_key(key):
                if value:
                    event_dict[key] = REDACTED
            else:
                event_dict[key] = redact_text(value)
        elif kind not in _PLAIN:
            event_dict[key] = redact(value, key)
    return event_dict
