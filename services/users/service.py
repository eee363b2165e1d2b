"""The users service's rules: registration, login, token rotation, logout, profiles, deletion."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as aioredis
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter
from observability.redaction import mask_email
from services.contracts.events import UserDeleted, UserRegistered, UserUpdated
from services.kit import edge
from services.kit.auth import Identity, TokenIssuer
from services.kit.cache import REDIS_UNAVAILABLE, key
from services.kit.deps import ClientInfo
from services.kit.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from services.kit.ratelimit import RateLimiter
from services.kit.revocations import sign_out
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork
from services.users import repository
from services.users.models import AuthLog, Session, User, UserProfile
from services.users.schemas import ProfileFields, ProfileUpdate, RegisterRequest, TokenResponse, UserResponse
from services.users.security import (
    UNUSABLE_PASSWORD,
    Passwords,
    check_password_strength,
    hash_refresh_token,
    new_refresh_token,
)
from services.users.settings import UsersSettings

REGISTRATIONS = counter("cerebrum_registrations_total", "Accounts registered.", ("role",))
LOGINS = counter("cerebrum_logins_total", "Login attempts by outcome.", ("outcome",))
TOKEN_REUSE = counter("cerebrum_refresh_token_reuse_total", "Rotated refresh tokens presented again (family revoked).")
log = structlog.get_logger("cerebrum.users")


@dataclass(frozen=True)
class AuthContext:
    """What the authentication rules need besides the database session."""

    settings: UsersSettings
    passwords: Passwords
    issuer: TokenIssuer
    limiter: RateLimiter
    redis: aioredis.Redis


def normalise_email(email: str) -> str:
    return email.strip().lower()


def pseudonymous_email(user_id: uuid.UUID) -> str:
    """The address a deleted account is known by: unique, and nobody's."""
    return f"deleted-{user_id.hex}@deleted.invalid"


def _user_response(user: User, profile: UserProfile | None) -> UserResponse:
    fields = ProfileFields.model_validate(profile, from_attributes=True) if profile else ProfileFields()
    return UserResponse(
        id=user.id,
        email=user.email,
        role=user.role,  # type: ignore[arg-type]
        status=user.status,
        created_at=as_utc(user.created_at),
        profile=fields,
    )


def _audit(
    db: AsyncSession,
    client: ClientInfo,
    *,
    event: str,
    outcome: str,
    email: str | None,
    user_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    db.add(
        AuthLog(
            user_id=user_id,
            email=email,
            event=event,
            outcome=outcome,
            reason=reason,
            client_ip=client.ip,
            user_agent=client.user_agent,
        )
    )


async def register(
    *,
    db: AsyncSession,
    ctx: AuthContext,
    client: ClientInfo,
    request: RegisterRequest,
    role: str = "student",
    check_limits: bool = True,
) -> UserResponse:
    """Registers an account with a strong password and a unique, normalised email."""
    email = normalise_email(request.email)
    if check_limits:
        decision = await ctx.limiter.hit(ctx.settings.register_limit_per_client, "register", client.ip)
        if not decision.allowed:
            _audit(db, client, event="register", outcome="rate_limited", email=email)
            UnitOfWork.of(db).keep_changes()
            raise TooManyRequests(
                "Too many registrations from this client; try again later", retry_after=decision.retry_after
            )
    password = request.password.get_secret_value()
    check_password_strength(password, email=email)
    if await repository.get_user_by_email(db=db, email=email) is not None:
        raise Conflict("An account with this email already exists", field="email")
    user = User(
        id=uuid.uuid4(),
        email=email,
        password_hash=await asyncio.to_thread(ctx.passwords.hash, password),
        role=role,
        status="active",
        created_at=utcnow(),
    )
    profile = UserProfile(
        user_id=user.id,
        full_name=request.full_name,
        phone=request.phone,
        grade=request.grade,
        target_exam=request.target_exam,
    )
    try:
        await repository.add_user(db=db, user=user, profile=profile)
    except IntegrityError as exc:  # a concurrent registration won the race for this email
        raise Conflict("An account with this email already exists", field="email") from exc
    _audit(db, client, event="register", outcome="success", email=email, user_id=user.id)
    registered = UserRegistered(
        user_id=user.id,
        email=email,
        full_name=request.full_name,
        role=role,
        grade=request.grade,
        target_exam=request.target_exam,
    )
    await UnitOfWork.of(db).record(registered)
    REGISTRATIONS.labels(role).inc()
    log.info("user_registered", user_id=str(user.id), email=mask_email(email), role=role)
    return _user_response(user, profile)


async def _start_session(
    *,
    db: AsyncSession,
    ctx: AuthContext,
    user: User,
    client: ClientInfo,
    family_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
) -> TokenResponse:
    refresh = new_refresh_token()
    now = utcnow()
    family = family_id or uuid.uuid4()
    await repository.add_session(
        db=db,
        session=Session(
            family_id=family,
            user_id=user.id,
            token_hash=hash_refresh_token(refresh),
            parent_id=parent_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds),
            client_ip=client.ip,
            user_agent=client.user_agent,
        ),
    )
    access = ctx.issuer.issue(user_id=user.id, role=user.role, session_id=str(family))  # type: ignore[arg-type]
    return TokenResponse(access_token=access, expires_in=ctx.issuer.ttl, refresh_token=refresh)


async def login(*, db: AsyncSession, ctx: AuthContext, client: ClientInfo, email: str, password: str) -> TokenResponse:
    """Logs in with email and password; every attempt is audited and rate-limited."""
    email = normalise_email(email)
    settings = ctx.settings
    for limit, ids in (
        (settings.login_limit_per_client, ("login-client", client.ip)),
        # Keyed by a digest: a limiter key names no one, even in the hour it outlives a deleted account.
        (settings.login_limit_per_account, ("login-account", hashlib.sha256(email.encode()).hexdigest()[:32])),
    ):
        decision = await ctx.limiter.hit(limit, *ids)  # every window of the limit, in one round trip
        if not decision.allowed:
            _audit(db, client, event="login", outcome="rate_limited", email=email, reason=ids[0])
            LOGINS.labels("rate_limited").inc()
            UnitOfWork.of(db).keep_changes()
            raise TooManyRequests("Too many login attempts; wait before trying again", retry_after=decision.retry_after)
    user = await repository.get_user_by_email(db=db, email=email)
    usable = user is not None and user.status == "active" and user.password_hash != UNUSABLE_PASSWORD
    # argon2 costs ~300 ms of CPU by design: off the event loop, so that a login does not stall
    # every other request of the process (and, embedded, of every service) or its /metrics scrape.
    stored = user.password_hash if usable and user else None
    if not await asyncio.to_thread(ctx.passwords.verify, stored, password):
        _audit(
            db,
            client,
            event="login",
            outcome="failure",
            email=email,
            user_id=user.id if user else None,
            reason="bad_credentials",
        )
        LOGINS.labels("failure").inc()
        UnitOfWork.of(db).keep_changes()
        raise Unauthorized("Email or password is incorrect")
    assert user is not None
    if ctx.passwords.needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(ctx.passwords.hash, password)
    tokens = await _start_session(db=db, ctx=ctx, user=user, client=client)
    _audit(db, client, event="login", outcome="success", email=email, user_id=user.id)
    LOGINS.labels("success").inc()
    return tokens


async def _forget_sessions(ctx: AuthContext, families: list[uuid.UUID]) -> None:
    """Makes live access tokens of revoked families fail everywhere until they expire anyway."""
    try:
        await sign_out(ctx.redis, ctx.settings, families)
    except REDIS_UNAVAILABLE:
        log.warning("revocation_not_broadcast", families=len(families))


async def refresh(*, db: AsyncSession, ctx: AuthContext, client: ClientInfo, refresh_token: str) -> TokenResponse:
    """Rotates a refresh token; a token used twice revokes its whole family (theft detection)."""
    session = await repository.get_session_by_token_hash(db=db, token_hash=hash_refresh_token(refresh_token))
    if session is None:
        raise Unauthorized("The refresh token is not valid")
    now = utcnow()
    if session.revoked_at is not None:
        raise Unauthorized("The refresh token has been revoked; log in again")
    if as_utc(session.expires_at) <= now:
        raise Unauthorized("The refresh token has expired; log in again")
    if session.rotated_at is not None or not await repository.mark_rotated(db=db, session_id=session.id, at=now):
        await repository.revoke_family(db=db, family_id=session.family_id, at=now, reason="reuse_detected")
        _audit(
            db, client, event="refresh", outcome="failure", email=None, user_id=session.user_id, reason="reuse_detected"
        )
        TOKEN_REUSE.inc()
        log.warning("refresh_token_reuse", user_id=str(session.user_id), family_id=str(session.family_id))
        await _forget_sessions(ctx, [session.family_id])
        UnitOfWork.of(db).keep_changes()
        raise Unauthorized("This refresh token was already used; the session has been revoked for safety")
    user = await repository.get_user(db=db, user_id=session.user_id)
    if user is None or user.status != "active":
        raise Unauthorized("The account is no longer active")
    _audit(db, client, event="refresh", outcome="success", email=None, user_id=user.id)
    return await _start_session(
        db=db, ctx=ctx, user=user, client=client, family_id=session.family_id, parent_id=session.id
    )


async def logout(*, db: AsyncSession, ctx: AuthContext, client: ClientInfo, identity: Identity) -> None:
    """Revokes the caller's session family: its refresh tokens and its live access tokens."""
    if identity.session_id is None:
        return
    family = uuid.UUID(identity.session_id)
    await repository.revoke_family(db=db, family_id=family, at=utcnow(), reason="logout")
    _audit(db, client, event="logout", outcome="success", email=None, user_id=identity.user_id)
    await _forget_sessions(ctx, [family])


PROFILE_COPY_SECONDS = 300
"""How long the gateway may keep a student's profile at most (kit.edge): every change made here
drops it at once; this bounds what a change made behind this service's back leaves."""


def _profile(ctx: AuthContext, user_id: uuid.UUID) -> str:
    return key(ctx.settings, "profile", user_id)


async def offer_profile(*, ctx: AuthContext, headers: edge.Headers, user_id: uuid.UUID) -> None:
    """Lets the gateway keep the caller's own profile, for them alone, until it changes.

    A student's landing page asks for it at every visit (14 of the mix's 72 requests).
    """
    prefix = ctx.settings.redis_key_prefix
    await edge.stamp(ctx.redis, headers, _profile(ctx, user_id), PROFILE_COPY_SECONDS, prefix=prefix, scope="user")


async def get_user(*, db: AsyncSession, user_id: uuid.UUID) -> UserResponse:
    """Gets an active user with their profile (one query, no ORM objects: every page load asks)."""
    row = await repository.get_user_with_profile(db=db, user_id=user_id)
    if row is None or row["status"] != "active":
        raise NotFound("No such user")
    return UserResponse(
        id=row["id"],
        email=row["email"],
        role=row["role"],
        status=row["status"],
        created_at=as_utc(row["created_at"]),
        profile=ProfileFields.model_validate({name: row[name] for name in ProfileFields.model_fields}),
    )


async def update_profile(
    *, db: AsyncSession, ctx: AuthContext, user_id: uuid.UUID, changes: ProfileUpdate
) -> UserResponse:
    """Changes the fields sent; the rest stay as they are."""
    user = await repository.get_user(db=db, user_id=user_id)
    if user is None or user.status != "active":
        raise NotFound("No such user")
    await edge.drop(ctx.redis, db, _profile(ctx, user_id), prefix=ctx.settings.redis_key_prefix)
    profile = await repository.get_profile(db=db, user_id=user_id) or UserProfile(user_id=user_id)
    changed = []
    for field, value in changes.model_dump(exclude_unset=True).items():
        if getattr(profile, field) != value:
            changed.append(field)
        setattr(profile, field, value)
    profile.updated_at = utcnow()
    db.add(profile)
    await db.flush()
    shared = [field for field in changed if field in UserUpdated.model_fields]
    if shared:  # city and school stay here: no other service keeps them
        updated = UserUpdated(
            user_id=user_id,
            changed=shared,
            email=user.email,
            full_name=profile.full_name,
            phone=profile.phone,
            grade=profile.grade,
            target_exam=profile.target_exam,
        )
        await UnitOfWork.of(db).record(updated)
    return _user_response(user, profile)


async def delete_account(*, db: AsyncSession, ctx: AuthContext, client: ClientInfo, user_id: uuid.UUID) -> None:
    """Anonymises the account's personal data and revokes all its sessions."""
    user = await repository.get_user(db=db, user_id=user_id)
    if user is None or user.status != "active":
        raise NotFound("No such user")
    now = utcnow()
    email, user.email = user.email, pseudonymous_email(user.id)
    user.password_hash = UNUSABLE_PASSWORD
    user.status = "deleted"
    user.deleted_at = now
    profile = await repository.get_profile(db=db, user_id=user_id)
    if profile is not None:
        for field in ("full_name", "phone", "city", "school"):
            setattr(profile, field, None)
    await edge.drop(ctx.redis, db, _profile(ctx, user_id), prefix=ctx.settings.redis_key_prefix)
    families = await repository.revoke_user_sessions(db=db, user_id=user_id, at=now, reason="account_deleted")
    await repository.forget_session_clients(db=db, user_id=user_id)
    await repository.anonymise_auth_logs(db=db, user_id=user_id, email=email)
    # The events that announced the person still hold their name and address until the relay's
    # retention ends; they keep their facts, but with the account's pseudonym instead.
    await repository.pseudonymise_announcements(db=db, user_id=user_id, email=user.email)
    await UnitOfWork.of(db).record(UserDeleted(user_id=user_id))
    _audit(db, client, event="account_deleted", outcome="success", email=None, user_id=user_id)
    await db.flush()
    await _forget_sessions(ctx, families)
    log.info("account_deleted", user_id=str(user_id))


async def set_password(
    *, db: AsyncSession, ctx: AuthContext, email: str, password: str, role: str | None = None
) -> None:
    """Sets an account's password (an operator's action) and revokes its sessions."""
    email = normalise_email(email)
    check_password_strength(password, email=email)
    user = await repository.get_user_by_email(db=db, email=email)
    if user is None:
        raise NotFound("No account with this email")
    user.password_hash = await asyncio.to_thread(ctx.passwords.hash, password)
    if role is not None:
        user.role = role
        await edge.drop(ctx.redis, db, _profile(ctx, user.id), prefix=ctx.settings.redis_key_prefix)
    families = await repository.revoke_user_sessions(db=db, user_id=user.id, at=utcnow(), reason="password_set")
    await _forget_sessions(ctx, families)
