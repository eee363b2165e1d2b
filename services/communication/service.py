"""Sending: a template rendered for a user on the channels they allow, queued for the dispatcher."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import address_for, queue
from services.communication.models import Message
from services.communication.preferences import blocked_reason
from services.communication.providers import Provider
from services.communication.rendering import Rendered, render
from services.communication.schemas import (
    MAX_BODY,
    DirectSend,
    EmailSend,
    LogEntry,
    LogFilters,
    LogPage,
    MessageOut,
    MessagePage,
    NotificationSend,
    PageParams,
    QueuedMessage,
    SendAccepted,
    StatusStep,
    WhatsAppSend,
)
from services.communication.settings import CommunicationSettings
from services.communication.telemetry import mask_address
from services.communication.templates import templates_for
from services.kit.auth import Identity
from services.kit.errors import InvalidInput, NotFound
from services.kit.time import as_utc

_ADDRESS_NAME = {"email": "email address", "whatsapp": "phone number", "sms": "phone number"}


class UnknownUser(NotFound):
    type, title = "user-not-found", "No such user"


@dataclass
class CommunicationContext:
    """What the communication rules need besides the database session."""

    settings: CommunicationSettings
    providers: dict[str, Provider]
    webhook_secrets: dict[str, bytes]


def accepted(messages: Sequence[Message]) -> SendAccepted:
    return SendAccepted(
        message_ids=[m.id for m in messages],
        messages=[QueuedMessage(id=m.id, channel=m.channel, status=m.status) for m in messages],  # type: ignore[arg-type]
    )


async def notify_user(
    *,
    db: AsyncSession,
    user_id: uuid.UUID,
    template: str,
    variables: Mapping[str, Any],
    channels: Sequence[str] | None,
    source: str = "api",
    dedup_key: str | None = None,
    first_for_key: bool = False,
) -> list[Message]:
    """Queues a template for a user on each channel it has (or those asked for) that reaches them.

    Channels the student switched off or opted out of get a suppressed message, never a send.
    Nothing is queued when any channel's version is missing a variable. Messages queued before
    under ``dedup_key`` are returned instead, unless the caller knows there are none
    (``first_for_key``: an event the consumer's inbox has just claimed, in this transaction).
    """
    if dedup_key is not None and not first_for_key:
        earlier = await repository.messages_with_keys(db=db, keys=[f"{dedup_key}:{c}" for c in _all(channels)])
        if earlier:
            return list(earlier)
    explicit = channels is not None
    versions = await templates_for(db, name=template, channels=channels, explicit=explicit)
    contact = await repository.get_contact(db=db, user_id=user_id)
    prefs = await repository.get_preferences(db=db, user_id=user_id)
    planned = []
    for version in versions:
        address = address_for(contact, version.channel)
        if version.channel != "in_app" and address is None:
            if explicit:
                raise InvalidInput(
                    f"No {_ADDRESS_NAME[version.channel]} is known for this user",
                    errors=[{"field": "channels", "message": f"{version.channel} cannot reach the user"}],
                )
            continue
        rendered = render(
            subject=version.subject,
            body=version.body,
            declared=list(version.variables),
            variables=variables,
            channel=version.channel,
        )
        planned.append((version, address, rendered))
    if not planned:
        raise InvalidInput(f"The user cannot be reached on any channel of template {template}")
    messages = []
    for version, address, rendered in planned:
        blocked = await blocked_reason(db, prefs=prefs, channel=version.channel, address=address)
        messages.append(
            await queue(
                db,
                user_id=user_id,
                channel=version.channel,
                recipient=address,
                rendered=rendered,
                template=version,
                source=source,
                dedup_key=f"{dedup_key}:{version.channel}" if dedup_key else None,
                blocked=blocked,
            )
        )
    return messages


def _all(channels: Sequence[str] | None) -> Sequence[str]:
    return channels if channels is not None else ("email", "whatsapp", "sms", "in_app")


async def send_notification(*, db: AsyncSession, request: NotificationSend) -> SendAccepted:
    """Queues a template for a user the academy knows, addressed by their stored name unless one is given."""
    contact = await repository.get_contact(db=db, user_id=request.user_id)
    if contact is None:
        raise UnknownUser("No user with this id is known to the academy", user_id=str(request.user_id))
    messages = await notify_user(
        db=db,
        user_id=request.user_id,
        template=request.template,
        variables={"name": contact.name or "there", **request.variables},
        channels=list(dict.fromkeys(request.channels)) if request.channels else None,
    )
    return accepted(messages)


async def send_direct(*, db: AsyncSession, channel: str, request: EmailSend | WhatsAppSend) -> SendAccepted:
    """Queues one message on one channel, to a user or to an address, from a template or a literal body."""
    user_id, address = await _recipient(db, channel=channel, request=request)
    template = None
    if request.template is not None:
        (template,) = await templates_for(db, name=request.template, channels=[channel], explicit=True)
        rendered = render(
            subject=template.subject,
            body=template.body,
            declared=list(template.variables),
            variables=request.variables,
            channel=channel,
        )
    else:
        body = request.body or ""
        if len(body) > MAX_BODY[channel]:
            raise InvalidInput(f"A {channel} message is at most {MAX_BODY[channel]} characters")
        rendered = Rendered(subject=getattr(request, "subject", None), body=body)
    prefs = await repository.get_preferences(db=db, user_id=user_id) if user_id else None
    blocked = await blocked_reason(db, prefs=prefs, channel=channel, address=address)
    message = await queue(
        db,
        user_id=user_id,
        channel=channel,
        recipient=address,
        rendered=rendered,
        template=template,
        source="api",
        blocked=blocked,
    )
    return accepted([message])


async def _recipient(db: AsyncSession, *, channel: str, request: DirectSend) -> tuple[uuid.UUID | None, str]:
    """The user and address of a direct send; an address of a known user is theirs (their preferences apply)."""
    to: str | None = getattr(request, "to", None)
    if to is not None:
        address = to.lower() if channel == "email" else to
        known = await repository.contacts_with_address(db=db, channel=channel, address=address)
        return (known[0].user_id if len(known) == 1 else None), address
    assert request.user_id is not None
    contact = await repository.get_contact(db=db, user_id=request.user_id)
    found = address_for(contact, channel)
    if found is None:
        raise InvalidInput(
            f"No {_ADDRESS_NAME[channel]} is known for this user; send `to` instead",
            errors=[{"field": "user_id", "message": f"no {_ADDRESS_NAME[channel]}"}],
        )
    return request.user_id, found


async def list_notifications(
    *, db: AsyncSession, identity: Identity, user_id: uuid.UUID, page: PageParams
) -> MessagePage:
    """Lists a user's messages with their delivery history, newest first (their own, or any for admins)."""
    identity.require_self_or_admin(user_id)
    messages, total = await repository.user_messages(db=db, user_id=user_id, limit=page.limit, offset=page.offset)
    histories = await repository.histories(db=db, message_ids=[m.id for m in messages])
    items = [
        MessageOut(
            id=m.id,
            user_id=m.user_id,
            channel=m.channel,  # type: ignore[arg-type]
            recipient=mask_address(m.recipient),
            template=m.template,
            template_version=m.template_version,
            subject=m.subject,
            body=m.body,
            status=m.status,  # type: ignore[arg-type]
            attempts=m.attempts,
            error=m.error,
            created_at=as_utc(m.created_at),
            sent_at=as_utc(m.sent_at) if m.sent_at else None,
            delivered_at=as_utc(m.delivered_at) if m.delivered_at else None,
            history=[
                StatusStep(status=s.status, detail=s.detail, occurred_at=as_utc(s.occurred_at))
                for s in histories.get(m.id, [])
            ],
        )
        for m in messages
    ]
    return MessagePage(items=items, total=total, limit=page.limit, offset=page.offset)


async def list_logs(*, db: AsyncSession, filters: LogFilters) -> LogPage:
    """Lists every message, newest first, by status, channel and user (admins); bodies stay out."""
    messages, total = await repository.logged_messages(db=db, filters=filters)
    items = [
        LogEntry(
            id=m.id,
            user_id=m.user_id,
            channel=m.channel,  # type: ignore[arg-type]
            recipient=mask_address(m.recipient),
            template=m.template,
            template_version=m.template_version,
            subject=m.subject,
            status=m.status,  # type: ignore[arg-type]
            attempts=m.attempts,
            provider=m.provider,
            provider_message_id=m.provider_message_id,
            error=m.error,
            source=m.source,
            created_at=as_utc(m.created_at),
            next_attempt_at=as_utc(m.next_attempt_at) if m.status == "queued" else None,
            sent_at=as_utc(m.sent_at) if m.sent_at else None,
            delivered_at=as_utc(m.delivered_at) if m.delivered_at else None,
        )
        for m in messages
    ]
    return LogPage(items=items, total=total, limit=filters.limit, offset=filters.offset)
