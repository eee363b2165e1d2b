"""A student's say over their messages: channels on or off, quiet hours, and STOP replies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import address_for
from services.communication.models import NotificationPreference
from services.communication.schemas import CHANNELS, PreferencesOut, PreferencesUpdate, QuietHours
from services.communication.telemetry import mask_address

log = structlog.get_logger("cerebrum.communication")
QUIET_CHANNELS = ("whatsapp", "sms")  # the ones that buzz a phone at night


def channel_enabled(prefs: NotificationPreference | None, channel: str) -> bool:
    """Every channel is on until the student switches it off."""
    return prefs is None or bool(getattr(prefs, channel))


def quiet_until(
    prefs: NotificationPreference | None, channel: str, now: datetime, default_zone: str
) -> datetime | None:
    """When a message may go out if it is inside the student's quiet hours now; None if it may go now."""
    if channel not in QUIET_CHANNELS or prefs is None:
        return None
    start, end = prefs.quiet_hours_start, prefs.quiet_hours_end
    if start is None or end is None:
        return None
    local = now.astimezone(ZoneInfo(prefs.timezone or default_zone))
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    resume = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if resume <= local:
        resume += timedelta(days=1)
    return resume.astimezone(UTC)


async def blocked_reason(
    db: AsyncSession, *, prefs: NotificationPreference | None, channel: str, address: str | None
) -> str | None:
    """Why a message must not be sent (switched off, STOP, a hard bounce), or None when it may."""
    if not channel_enabled(prefs, channel):
        return f"{channel} switched off by the student"
    if address is not None and await repository.opted_out(db=db, channel=channel, addresses=[address]):
        return f"the address opted out of {channel}"
    return None


def _out(user_id: uuid.UUID, prefs: NotificationPreference | None) -> PreferencesOut:
    quiet = None
    if prefs is not None and prefs.quiet_hours_start is not None and prefs.quiet_hours_end is not None:
        quiet = QuietHours(start=prefs.quiet_hours_start, end=prefs.quiet_hours_end, timezone=prefs.timezone)
    return PreferencesOut(
        user_id=user_id,
        email=channel_enabled(prefs, "email"),
        whatsapp=channel_enabled(prefs, "whatsapp"),
        sms=channel_enabled(prefs, "sms"),
        in_app=channel_enabled(prefs, "in_app"),
        quiet_hours=quiet,
    )


async def get_preferences(*, db: AsyncSession, user_id: uuid.UUID) -> PreferencesOut:
    """Gets a user's preferences (all channels on when never set)."""
    return _out(user_id, await repository.get_preferences(db=db, user_id=user_id))


async def update_preferences(*, db: AsyncSession, user_id: uuid.UUID, changes: PreferencesUpdate) -> PreferencesOut:
    """Switches the channels sent on or off and sets or removes quiet hours."""
    prefs = await repository.lock_preferences(db=db, user_id=user_id)
    contact = await repository.get_contact(db=db, user_id=user_id)
    for channel in CHANNELS:
        wanted = getattr(changes, channel)
        if wanted is None:
            continue
        setattr(prefs, channel, wanted)
        address = address_for(contact, channel)
        if wanted and address is not None:
            # Switching a channel back on is the student's consent again: it undoes their STOP reply.
            await repository.remove_opt_out(db=db, channel=channel, address=address, reason="stop")
    if "quiet_hours" in changes.model_fields_set:
        quiet = changes.quiet_hours
        prefs.quiet_hours_start = quiet.start if quiet else None
        prefs.quiet_hours_end = quiet.end if quiet else None
        prefs.timezone = quiet.timezone if quiet else None
    await db.flush()
    log.info("notification_preferences_updated", **{c: channel_enabled(prefs, c) for c in CHANNELS})
    return _out(user_id, prefs)


async def opt_out(db: AsyncSession, *, channel: str, address: str) -> int:
    """A STOP reply: the address gets nothing more on that channel, and its users' channel is switched off."""
    contacts = await repository.contacts_with_address(db=db, channel=channel, address=address)
    await repository.add_opt_out(
        db=db, channel=channel, address=address, user_id=contacts[0].user_id if contacts else None, reason="stop"
    )
    for contact in contacts:
        prefs = await repository.lock_preferences(db=db, user_id=contact.user_id)
        setattr(prefs, channel, False)
    log.info("notification_opt_out", channel=channel, address=mask_address(address), users=len(contacts))
    return len(contacts)


async def opt_in(db: AsyncSession, *, channel: str, address: str) -> int:
    """A START reply: undoes a STOP from the same address."""
    contacts = await repository.contacts_with_address(db=db, channel=channel, address=address)
    await repository.remove_opt_out(db=db, channel=channel, address=address, reason="stop")
    for contact in contacts:
        prefs = await repository.lock_preferences(db=db, user_id=contact.user_id)
        setattr(prefs, channel, True)
    log.info("notification_opt_in", channel=channel, address=mask_address(address), users=len(contacts))
    return len(contacts)
