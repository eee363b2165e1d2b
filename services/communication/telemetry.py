"""The service's business metrics, and the masking that keeps addresses out of logs."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter, gauge, histogram
from observability.redaction import mask_email

NOTIFICATIONS = counter(
    "cerebrum_notifications_total",
    "Messages reaching a status: queued, sent, delivered, failed, bounced, suppressed.",
    ("channel", "status"),
)
SEND_SECONDS = histogram("cerebrum_notification_send_seconds", "Time a provider took to take a message.", ("channel",))
QUEUE_DEPTH = gauge("cerebrum_notification_queue_depth", "Messages queued and not yet sent.", ("channel",))

_PHONE = re.compile(r"\+?\d[\d -]{6,}\d")
_COUNTS = "notification_counts"


def mask_phone(phone: str) -> str:
    """Keeps a phone number's country code hint and last two digits: +91********78."""
    digits = phone.strip()
    return digits[:3] + "*" * max(len(digits) - 5, 3) + digits[-2:]


def mask_address(address: str | None) -> str | None:
    """An email or phone number as logs and operators may see it."""
    if address is None:
        return None
    return mask_email(address) if "@" in address else mask_phone(address)


def scrub(text: str) -> str:
    """Masks every email address and phone number in free text (a provider's error, say)."""
    return mask_email(_PHONE.sub(lambda m: mask_phone(m.group(0)), text))


def count_on_commit(session: AsyncSession, channel: str, status: str) -> None:
    """Counts a status change once the transaction that made it has committed."""
    session.info.setdefault(_COUNTS, []).append((channel, status))


def flush_counts(info: dict[str, Any]) -> None:
    """The database's commit hook: counts what the committed transaction changed."""
    for channel, status in info.pop(_COUNTS, ()):
        NOTIFICATIONS.labels(channel, status).inc()
