"""Provider webhooks: delivery reports and replies, each signed with the provider's own secret.

Signature: ``X-Cerebrum-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``.
The timestamp is signed too, so a captured request cannot be replayed after the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
from email.utils import parseaddr
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import record_step
from services.communication.preferences import opt_in, opt_out
from services.communication.schemas import InboundReply, InboundResult, StatusWebhook, WebhookResult
from services.communication.telemetry import scrub
from services.kit.errors import InvalidInput, NotFound, Unauthorized
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.communication")
SIGNATURE_HEADER = "X-Cerebrum-Signature"
PROVIDER_CHANNELS = {"smtp": "email", "whatsapp": "whatsapp", "twilio": "sms"}
# The statuses a report may move a message from; anything else is a duplicate or out of order.
_MOVES_FROM = {"delivered": {"sent"}, "failed": {"sent"}, "bounced": {"sent", "delivered"}}
# The opt-out and opt-in keywords carriers honour (Twilio's list).
STOP_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "SUBSCRIBE"})
Model = TypeVar("Model", bound=BaseModel)


def channel_of(provider: str) -> str:
    """The channel a webhook provider reports on; 404 for a provider we do not have."""
    channel = PROVIDER_CHANNELS.get(provider)
    if channel is None:
        raise NotFound(f"No webhook for provider {provider[:40]}")
    return channel


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for a body (what a provider, or a test, sends)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(*, secret: bytes, header: str | None, body: bytes, now: float, tolerance: int) -> None:
    """Refuses a webhook whose signature is missing, forged, or too old (401)."""
    if not header:
        raise Unauthorized(f"Sign the webhook: {SIGNATURE_HEADER} header missing")
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or not given:
        raise Unauthorized(f"{SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex digest>")
    if abs(now - int(timestamp)) > tolerance:
        raise Unauthorized("The webhook signature has expired")
    expected = sign(secret, body, int(timestamp)).partition("v1=")[2]
    if not hmac.compare_digest(expected, given):
        raise Unauthorized("The webhook signature does not match")


def parse(model: type[Model], body: bytes) -> Model:
    """Reads a webhook body; a malformed one is a 422 naming the bad fields."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()[:20]
        ]
        raise InvalidInput("The webhook body is not valid", errors=errors) from exc


async def record_delivery_reports(*, db: AsyncSession, provider: str, body: bytes) -> WebhookResult:
    """Moves messages to delivered, failed or bounced as their provider reports; repeats change nothing."""
    channel = channel_of(provider)
    reports = parse(StatusWebhook, body).events
    messages = await repository.messages_by_provider_ids(
        db=db, channel=channel, provider_ids=[r.provider_message_id for r in reports]
    )
    updated = 0
    now = utcnow()
    for report in reports:
        message = messages.get(report.provider_message_id)
        if message is None or message.status not in _MOVES_FROM[report.status]:
            continue
        detail = scrub(report.error)[:300] if report.error else None
        record_step(db, message, report.status, detail=detail, at=now)
        if report.status == "delivered":
            message.delivered_at = now
        else:
            message.error = detail or report.status
        if report.status == "bounced" and message.recipient:
            # A hard bounce: the address does not exist, and sending to it again hurts the sender's reputation.
            await repository.add_opt_out(
                db=db, channel=channel, address=message.recipient, user_id=message.user_id, reason="bounced"
            )
        updated += 1
        log.info("notification_status_reported", message_id=str(message.id), channel=channel, status=report.status)
    return WebhookResult(updated=updated, ignored=len(reports) - updated)


def _address(channel: str, sender: str) -> str:
    sender = sender.strip()
    if channel == "email":
        return parseaddr(sender)[1].lower() or sender.lower()
    digits = sender.removeprefix("whatsapp:").strip()
    return digits if digits.startswith("+") else f"+{digits}"


async def record_reply(*, db: AsyncSession, provider: str, body: bytes) -> InboundResult:
    """Handles a student's reply: STOP opts the sender out of that channel, START undoes it."""
    channel = channel_of(provider)
    reply = parse(InboundReply, body)
    address = _address(channel, reply.sender)
    keyword = " ".join(reply.text.upper().split()).strip(" .!")
    if keyword in STOP_WORDS:
        await opt_out(db, channel=channel, address=address)
        return InboundResult(action="opted_out", channel=channel)  # type: ignore[arg-type]
    if keyword in START_WORDS:
        await opt_in(db, channel=channel, address=address)
        return InboundResult(action="opted_in", channel=channel)  # type: ignore[arg-type]
    log.info("notification_reply_ignored", channel=channel)
    return InboundResult(action="ignored", channel=channel)  # type: ignore[arg-type]
