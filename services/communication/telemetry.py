"""The service's business metrics, and the masking that keeps addresses out of logs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter, gauge, histogram
from observability.redaction import mask_email
from observability.tracing import context_of
from services.kit.uow import UnitOfWork

NOTIFICATIONS = counter(
    "cerebrum_notifications_total",
    "Messages reaching a status: queued, sent, delivered, failed, bounced, suppressed.",
    ("channel", "status"),
)
SEND_SECONDS = histogram("cerebrum_notification_send_seconds", "Time a provider took to take a message.", ("channel",))
QUEUE_DEPTH = gauge("cerebrum_notification_queue_depth", "Messages queued and not yet sent.", ("channel",))

tracer = trace.get_tracer("cerebrum.communication")

_PHONE = re.compile(r"\+?\d[\d -]{6,}\d")


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
    UnitOfWork.of(session).after_commit(NOTIFICATIONS.labels(channel, status).inc)


@contextmanager
def send_span(
    *, message_id: str, channel: str, provider: str, attempt: int, queued_in: Mapping[str, str] | None
) -> Iterator[Span]:
    """One send attempt's span, a child of the span that queued the message (``queued_in``).

    A parent, not a link: each message has exactly one cause (the request or the consumed event
    that queued it) and its send is the end of that cause's work, so it belongs in that trace,
    beside the welcome mail's registration or the receipt's payment. A link suits a span with many
    causes (a consumer's batch); here each attempt, retries included, is a span of its own.
    A message queued outside any trace starts one.
    """
    with tracer.start_as_current_span(
        "notification.send",
        context=context_of(queued_in),
        kind=SpanKind.INTERNAL,
        attributes={
            "cerebrum.notification.id": message_id,
            "cerebrum.notification.channel": channel,
            "cerebrum.notification.provider": provider,
            "cerebrum.notification.attempt": attempt,
        },
    ) as span:
        yield span
