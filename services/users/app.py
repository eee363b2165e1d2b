from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.contracts.events import UserDeleted, UserRegistered, UserUpdated
from services.kit.app import ServiceKit, build_service_app
from services.kit.auth import TokenIssuer
from services.users.models import OUTBOX
from services.users.routes import router
from services.users.security import Passwords
from services.users.service import AuthContext
from services.users.settings import UsersSettings

PUBLISHES = (UserDeleted, UserRegistered, UserUpdated)
"""The contracts this service records in its outbox (their counters exist at zero from start-up)."""

MIGRATIONS = Path(__file__).parent / "migrations"


def build_auth_context(kit: ServiceKit, settings: UsersSettings) -> AuthContext:
    passwords = Passwords(
        time_cost=settings.password_time_cost,
        memory_kib=settings.password_memory_kib,
        parallelism=settings.password_parallelism,
    )
    return AuthContext(
        settings=settings, passwords=passwords, issuer=TokenIssuer(settings), limiter=kit.limiter, redis=kit.redis
    )


def create_app(settings: UsersSettings | None = None) -> FastAPI:
    """Builds the users service: accounts, logins, tokens and profiles."""
    settings = settings or UsersSettings()
    kit = ServiceKit.build(settings)
    app = build_service_app(
        kit,
        title="Cerebrum users",
        routers=[router],
        migrations_dir=MIGRATIONS,
        description="Accounts, authentication, sessions and profiles.",
        outbox=OUTBOX,
        publishes=PUBLISHES,
    )
    app.state.auth = build_auth_context(kit, settings)
    return app
