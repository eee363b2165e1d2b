"""Every query of the users service."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import RowMapping, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.statements import select_by
from services.users.models import OUTBOX, AuthLog, Session, User, UserProfile
from services.users.schemas import ProfileFields

PERSONAL_EVENTS = ("user.registered", "user.updated")
"""The events whose data names the person."""


async def get_user(*, db: AsyncSession, user_id: uuid.UUID) -> User | None:
    """Gets a user by id."""
    return await db.get(User, user_id)


_USERS, _PROFILES = User.__table__, UserProfile.__table__
_PROFILE_COLUMNS = tuple(ProfileFields.model_fields)
_USER_WITH_PROFILE = (
    select(
        _USERS.c.id, _USERS.c.email, _USERS.c.role, _USERS.c.status, _USERS.c.created_at,
        *(_PROFILES.c[name] for name in _PROFILE_COLUMNS),
    )
    .select_from(_USERS.outerjoin(_PROFILES, _PROFILES.c.user_id == _USERS.c.id))
    .where(_USERS.c.id == bindparam("user_id"))
)  # fmt: skip


async def get_user_with_profile(*, db: AsyncSession, user_id: uuid.UUID) -> RowMapping | None:
    """A user and their profile's fields in one query, as plain rows: the hot read of every page."""
    return (await db.execute(_USER_WITH_PROFILE, {"user_id": user_id})).mappings().first()


async def get_user_by_email(*, db: AsyncSession, email: str) -> User | None:
    """Gets a user by normalised email."""
    return (await db.execute(select_by(User, "email"), {"key": email})).scalar_one_or_none()


async def get_profile(*, db: AsyncSession, user_id: uuid.UUID) -> UserProfile | None:
    """Gets a user's profile."""
    return await db.get(UserProfile, user_id)


async def add_user(*, db: AsyncSession, user: User, profile: UserProfile) -> None:
    """Adds a user and profile, flushing so a duplicate email fails here."""
    db.add(user)
    await db.flush()
    db.add(profile)
    await db.flush()


async def add_session(*, db: AsyncSession, session: Session) -> None:
    """Adds a refresh-token session."""
    db.add(session)
    await db.flush()


async def get_session_by_token_hash(*, db: AsyncSession, token_hash: str) -> Session | None:
    """Gets the session a refresh token belongs to."""
    return (await db.execute(select(Session).where(Session.token_hash == token_hash))).scalar_one_or_none()


async def mark_rotated(*, db: AsyncSession, session_id: uuid.UUID, at: datetime) -> bool:
    """Marks a session's token as used, once: False when another request already used or revoked it."""
    result = await db.execute(
        update(Session)
        .where(Session.id == session_id, Session.rotated_at.is_(None), Session.revoked_at.is_(None))
        .values(rotated_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_family(*, db: AsyncSession, family_id: uuid.UUID, at: datetime, reason: str) -> None:
    """Revokes every token of a session family."""
    await db.execute(
        update(Session)
        .where(Session.family_id == family_id, Session.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )


async def revoke_user_sessions(*, db: AsyncSession, user_id: uuid.UUID, at: datetime, reason: str) -> list[uuid.UUID]:
    """Revokes every session of a user; returns the families that were still live."""
    families = (
        (
            await db.execute(
                select(Session.family_id).where(Session.user_id == user_id, Session.revoked_at.is_(None)).distinct()
            )
        )
        .scalars()
        .all()
    )
    await db.execute(
        update(Session)
        .where(Session.user_id == user_id, Session.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )
    return list(families)


async def anonymise_auth_logs(*, db: AsyncSession, user_id: uuid.UUID, email: str) -> None:
    """Removes the email and client details from a user's authentication history.

    Attempts refused before the account was known (a rate-limited registration or login) carry
    only the address, so those go by the address.
    """
    await db.execute(
        update(AuthLog)
        .where(or_(AuthLog.user_id == user_id, AuthLog.email == email))
        .values(email=None, client_ip=None, user_agent=None)
    )


async def forget_session_clients(*, db: AsyncSession, user_id: uuid.UUID) -> None:
    """Removes where a user's sessions were used from: their IP addresses and browsers."""
    await db.execute(update(Session).where(Session.user_id == user_id).values(client_ip=None, user_agent=None))


async def pseudonymise_announcements(*, db: AsyncSession, user_id: uuid.UUID, email: str) -> None:
    """Replaces the person's name, phone and address in the outbox rows that announced them."""
    rows = await db.execute(
        select(OUTBOX.c.id, OUTBOX.c.payload).where(
            OUTBOX.c.event_type.in_(PERSONAL_EVENTS),
            OUTBOX.c.payload[("data", "user_id")].as_string() == str(user_id),
        )
    )
    for row in rows:
        data = row.payload.get("data", {})
        scrubbed = {**data, **{field: None for field in ("full_name", "phone") if field in data}, "email": email}
        payload = {**row.payload, "data": scrubbed}
        await db.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(payload=payload))
