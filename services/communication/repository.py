"""Every query of the communication service."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from services.communication.models import (
    Contact,
    DeliveryStatus,
    Message,
    MessageTemplate,
    NotificationPreference,
    OptOut,
)
from services.communication.schemas import LogFilters, TemplateFilters
from services.kit.statements import cacheable, dialect_insert
from services.kit.time import utcnow


def _insert(db: AsyncSession, model: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``model``'s table that can say ON CONFLICT, in the session's dialect."""
    return dialect_insert(db.get_bind().dialect.name, cast(Table, model.__table__))


_TEMPLATES = "communication.active_templates"
_NO_CONTACT = "communication.no_contact"
_NO_PREFERENCES = "communication.no_preferences"
_READ_AHEAD = "communication.read_ahead"


def _known_absent(db: AsyncSession, what: str = _NO_CONTACT) -> set[uuid.UUID]:
    """Users this session found no contact (or no preferences) for: the identity map remembers only
    rows that exist."""
    absent: set[uuid.UUID] = db.info.setdefault(what, set())
    return absent


async def add(*, db: AsyncSession, rows: Sequence[Any]) -> None:
    """Adds new rows, flushing so that constraint violations surface here."""
    if any(isinstance(row, MessageTemplate) for row in rows):
        db.info.pop(_TEMPLATES, None)
    db.add_all(rows)
    await db.flush()


# Templates ---------------------------------------------------------------------------------------
async def active_templates(
    *, db: AsyncSession, name: str, channels: Sequence[str] | None = None
) -> Sequence[MessageTemplate]:
    """Gets a template's active version on each channel (or on the channels given).

    Remembered for the rest of the session, which changes templates only through this module: a
    batch of events sending the same template reads it once.
    """
    known: dict[tuple[str, tuple[str, ...] | None], Sequence[MessageTemplate]] = db.info.setdefault(_TEMPLATES, {})
    key = (name, tuple(channels) if channels is not None else None)
    if key in known:
        return known[key]
    params: dict[str, Any] = {"name": name} if channels is None else {"name": name, "channels": list(channels)}
    found = known[key] = (await db.execute(_active_templates(channels is not None), params)).scalars().all()
    return found


# What a batch of events and a dispatcher round read, built once with bound parameters
# (services/kit/statements.py says why).


@functools.cache
def _active_templates(on_channels: bool) -> Any:
    query = select(MessageTemplate).where(MessageTemplate.name == bindparam("name"), MessageTemplate.active.is_(True))
    if on_channels:
        query = query.where(MessageTemplate.channel.in_(bindparam("channels", expanding=True)))
    return query.order_by(MessageTemplate.channel)


@functools.cache
def _people(model: type[Any]) -> Any:
    return select(model.user_id, model).where(model.user_id.in_(bindparam("user_ids", expanding=True)))


@functools.cache
def _preferences_of() -> Any:
    return select(NotificationPreference).where(
        NotificationPreference.user_id.in_(bindparam("user_ids", expanding=True))
    )


@functools.cache
def _opted_out() -> Any:
    return select(OptOut.address).where(
        OptOut.channel == bindparam("channel"), OptOut.address.in_(bindparam("addresses", expanding=True))
    )


@functools.cache
def _due_messages(limit: int) -> Any:
    return (
        select(Message)
        .where(
            Message.status == "queued",
            Message.channel == bindparam("channel"),
            Message.next_attempt_at <= bindparam("now"),
        )
        .order_by(Message.next_attempt_at, Message.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _queue_by_channel() -> Any:
    due = func.count().filter(Message.next_attempt_at <= bindparam("now"))
    return select(Message.channel, func.count(), due).where(Message.status == "queued").group_by(Message.channel)


async def latest_version(*, db: AsyncSession, name: str, channel: str) -> int:
    """The newest version number of a template on a channel; 0 when it has none."""
    query = select(func.max(MessageTemplate.version)).where(
        MessageTemplate.name == name, MessageTemplate.channel == channel
    )
    return int((await db.execute(query)).scalar_one() or 0)


async def deactivate_templates(*, db: AsyncSession, name: str, channel: str) -> None:
    """Retires every version of a template on a channel (before its new version is added)."""
    db.info.pop(_TEMPLATES, None)
    await db.execute(
        update(MessageTemplate)
        .where(MessageTemplate.name == name, MessageTemplate.channel == channel, MessageTemplate.active.is_(True))
        .values(active=False)
    )


async def list_templates(*, db: AsyncSession, filters: TemplateFilters) -> Sequence[MessageTemplate]:
    """Lists templates by name, channel and newest version first; only active ones unless asked."""
    query = select(MessageTemplate)
    if filters.name is not None:
        query = query.where(MessageTemplate.name == filters.name)
    if filters.channel is not None:
        query = query.where(MessageTemplate.channel == filters.channel)
    if not filters.all_versions:
        query = query.where(MessageTemplate.active.is_(True))
    order = (MessageTemplate.name, MessageTemplate.channel, MessageTemplate.version.desc())
    return (await db.execute(query.order_by(*order).limit(1000))).scalars().all()


async def add_templates_if_missing(*, db: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Inserts first versions that do not exist yet (replicas seeding at once insert each once)."""
    db.info.pop(_TEMPLATES, None)
    statement = _insert(db, MessageTemplate).values(list(rows)).on_conflict_do_nothing()
    result = await db.execute(statement.returning(MessageTemplate.id))
    return len(result.all())


# Contacts, preferences and opt-outs ------------------------------------------------------------
async def get_contact(*, db: AsyncSession, user_id: uuid.UUID) -> Contact | None:
    """Gets where a user can be reached (a user found unknown once is not looked up again in this session)."""
    absent = _known_absent(db)
    if user_id in absent:
        return None
    contact = await db.get(Contact, user_id)
    if contact is None:
        absent.add(user_id)
    return contact


async def read_people(*, db: AsyncSession, user_ids: Collection[uuid.UUID]) -> None:
    """Reads several users' contacts and preferences, one query each, into the session: looking any
    of them up afterwards (``get_contact``, ``get_preferences``) asks the database nothing more."""
    for model, what in ((Contact, _NO_CONTACT), (NotificationPreference, _NO_PREFERENCES)):
        absent = _known_absent(db, what)
        wanted = set(user_ids) - absent
        if wanted:
            found = (await db.execute(_people(model), {"user_ids": list(wanted)})).all()
            absent.update(wanted - {user_id for user_id, _ in found})
            # The identity map holds its rows weakly: held here, they stay for the session's lookups.
            db.info.setdefault(_READ_AHEAD, []).extend(row for _, row in found)


async def save_contact(
    *, db: AsyncSession, user_id: uuid.UUID, email: str | None, phone: str | None, name: str | None
) -> None:
    """Stores a user's contact details; fields given as None keep what is known."""
    values = {"user_id": user_id, "email": email, "phone": phone, "name": name, "updated_at": utcnow()}
    _known_absent(db).discard(user_id)
    await db.execute(_contact_upsert(db.get_bind().dialect.name), values)
    # The upsert leaves a copy the session read earlier as it was: the next lookup reads the row again.
    known = db.identity_map.get(identity_key(Contact, user_id))
    if known is not None:
        db.expunge(known)


@functools.cache
def _contact_upsert(dialect: str) -> Any:
    """The contact upsert, built once per dialect: a field sent as None keeps the stored one.

    An ON CONFLICT statement has no cache key of its own: without one it is compiled at each use.
    """
    table = cast(Table, Contact.__table__)
    insert = dialect_insert(dialect, table)
    kept = {column: func.coalesce(insert.excluded[column], table.c[column]) for column in ("email", "phone", "name")}
    changes = {**kept, "updated_at": insert.excluded.updated_at}
    return cacheable(insert.on_conflict_do_update(index_elements=[table.c.user_id], set_=changes))


async def contacts_with_address(*, db: AsyncSession, channel: str, address: str) -> Sequence[Contact]:
    """Finds the users an email address (email) or phone number (WhatsApp, SMS) belongs to."""
    column = Contact.email if channel == "email" else Contact.phone
    return (await db.execute(select(Contact).where(column == address))).scalars().all()


async def delete_contact(*, db: AsyncSession, user_id: uuid.UUID) -> None:
    """Forgets a user's contact details and preferences."""
    await db.execute(delete(Contact).where(Contact.user_id == user_id))
    await db.execute(delete(NotificationPreference).where(NotificationPreference.user_id == user_id))


async def get_preferences(*, db: AsyncSession, user_id: uuid.UUID) -> NotificationPreference | None:
    """Gets a user's notification preferences, if they ever set any."""
    if user_id in _known_absent(db, _NO_PREFERENCES):
        return None
    return await db.get(NotificationPreference, user_id)


async def preferences_of(*, db: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, NotificationPreference]:
    """Gets the preferences of several users."""
    if not user_ids:
        return {}
    rows = await db.execute(_preferences_of(), {"user_ids": list(set(user_ids))})
    return {p.user_id: p for p in rows.scalars()}


async def lock_preferences(*, db: AsyncSession, user_id: uuid.UUID) -> NotificationPreference:
    """Gets a user's preferences for changing, creating them (everything on) on first use."""
    _known_absent(db, _NO_PREFERENCES).discard(user_id)
    await db.execute(_insert(db, NotificationPreference).values(user_id=user_id).on_conflict_do_nothing())
    query = select(NotificationPreference).where(NotificationPreference.user_id == user_id).with_for_update()
    return (await db.execute(query)).scalar_one()


async def add_opt_out(*, db: AsyncSession, channel: str, address: str, user_id: uuid.UUID | None, reason: str) -> None:
    """Remembers that an address must not be sent to on a channel."""
    row = {"channel": channel, "address": address, "user_id": user_id, "reason": reason, "created_at": utcnow()}
    await db.execute(_insert(db, OptOut).values(row).on_conflict_do_nothing())


async def remove_opt_out(*, db: AsyncSession, channel: str, address: str, reason: str) -> None:
    """Lifts an opt-out given for a reason (a STOP undone by START or by the student's preferences)."""
    await db.execute(
        delete(OptOut).where(OptOut.channel == channel, OptOut.address == address, OptOut.reason == reason)
    )


async def opted_out(*, db: AsyncSession, channel: str, addresses: Sequence[str]) -> set[str]:
    """Which of the addresses must not be sent to on a channel."""
    if not addresses:
        return set()
    params = {"channel": channel, "addresses": list(set(addresses))}
    return set((await db.execute(_opted_out(), params)).scalars())


# Messages --------------------------------------------------------------------------------------
async def messages_with_keys(*, db: AsyncSession, keys: Sequence[str]) -> Sequence[Message]:
    """Gets the messages already made for some deduplication keys."""
    return (await db.execute(select(Message).where(Message.dedup_key.in_(keys)))).scalars().all()


async def user_messages(
    *, db: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[Message], int]:
    """Gets one page of a user's messages, newest first, with the total."""
    total = (await db.execute(select(func.count()).where(Message.user_id == user_id))).scalar_one()
    query = (
        select(Message)
        .where(Message.user_id == user_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await db.execute(query)).scalars().all(), int(total)


async def logged_messages(*, db: AsyncSession, filters: LogFilters) -> tuple[Sequence[Message], int]:
    """Gets one page of every message, newest first, by status, channel and user."""
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Message.status == filters.status)
    if filters.channel is not None:
        conditions.append(Message.channel == filters.channel)
    if filters.user_id is not None:
        conditions.append(Message.user_id == filters.user_id)
    total = (await db.execute(select(func.count()).select_from(Message).where(*conditions))).scalar_one()
    query = (
        select(Message)
        .where(*conditions)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(filters.limit)
        .offset(filters.offset)
    )
    return (await db.execute(query)).scalars().all(), int(total)


async def histories(*, db: AsyncSession, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[DeliveryStatus]]:
    """Gets the status history of several messages, oldest step first."""
    found: dict[uuid.UUID, list[DeliveryStatus]] = defaultdict(list)
    if message_ids:
        query = select(DeliveryStatus).where(DeliveryStatus.message_id.in_(message_ids)).order_by(DeliveryStatus.id)
        for step in (await db.execute(query)).scalars():
            found[step.message_id].append(step)
    return found


async def due_messages(*, db: AsyncSession, channel: str, now: datetime, limit: int) -> Sequence[Message]:
    """Locks the oldest queued messages of a channel that are due; rows another replica holds are skipped."""
    return (await db.execute(_due_messages(limit), {"channel": channel, "now": now})).scalars().all()


async def queue_depth(*, db: AsyncSession) -> dict[str, int]:
    """Counts queued messages per channel."""
    return {channel: queued for channel, (queued, _) in (await queue_by_channel(db=db, now=utcnow())).items()}


async def queue_by_channel(*, db: AsyncSession, now: datetime) -> dict[str, tuple[int, int]]:
    """Per channel: the messages queued, and how many of them are due by ``now``."""
    rows = (await db.execute(_queue_by_channel(), {"now": now})).all()
    return {channel: (int(queued), int(ready)) for channel, queued, ready in rows}


async def messages_by_provider_ids(
    *, db: AsyncSession, channel: str, provider_ids: Sequence[str]
) -> dict[str, Message]:
    """Locks the messages a provider's status report is about, by the provider's message ids."""
    query = (
        select(Message)
        .where(Message.channel == channel, Message.provider_message_id.in_(set(provider_ids)))
        .with_for_update()
    )
    return {m.provider_message_id or "": m for m in (await db.execute(query)).scalars()}


async def queued_messages_of(*, db: AsyncSession, user_id: uuid.UUID) -> Sequence[Message]:
    """Locks a user's messages that have not been sent yet."""
    query = select(Message).where(Message.user_id == user_id, Message.status == "queued").with_for_update()
    return (await db.execute(query)).scalars().all()


# A person's data, after their profile changed or their account was deleted --------------------
async def replace_contact(
    *, db: AsyncSession, user_id: uuid.UUID, email: str, phone: str | None, name: str | None
) -> bool:
    """Replaces a known user's contact details (None clears a field); False when the user is unknown."""
    result = await db.execute(
        update(Contact)
        .where(Contact.user_id == user_id)
        .values(email=email, phone=phone, name=name, updated_at=utcnow())
        .returning(Contact.user_id)
    )
    return result.first() is not None


async def scrub_messages(*, db: AsyncSession, user_id: uuid.UUID, addresses: Sequence[str], body: str) -> int:
    """Removes who a user's messages went to and what they said; their statuses stay. Returns how many."""
    theirs = Message.user_id == user_id
    if addresses:
        theirs = theirs | Message.recipient.in_(list(addresses))
    ids = list((await db.execute(select(Message.id).where(theirs))).scalars())
    if not ids:
        return 0
    await db.execute(
        update(Message).where(Message.id.in_(ids)).values(recipient=None, subject=None, body=body, error=None)
    )
    # A provider's refusal may quote the address it refused.
    await db.execute(
        update(DeliveryStatus)
        .where(DeliveryStatus.message_id.in_(ids), DeliveryStatus.status.in_(("failed", "bounced", "retrying")))
        .values(detail=None)
    )
    return len(ids)


async def forget_opt_outs(*, db: AsyncSession, user_id: uuid.UUID, addresses: Sequence[str]) -> None:
    """Deletes the opt-outs of a user and of their addresses."""
    theirs = OptOut.user_id == user_id
    if addresses:
        theirs = theirs | OptOut.address.in_(list(addresses))
    await db.execute(delete(OptOut).where(theirs))
