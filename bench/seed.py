"""Schemas and data a benchmark needs, made in this process as `cerebrum db upgrade` and `seed catalogue` make them."""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import TYPE_CHECKING

from services.kit.settings import ServiceSettings

if TYPE_CHECKING:
    from services.kit.app import ServiceKit


def settings_class(name: str) -> type[ServiceSettings]:
    """The service's own settings class (``UsersSettings`` for users), found in its package alone."""
    module = importlib.import_module(f"services.{name}.settings")
    return next(
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value is not ServiceSettings
    )


def settings_from(name: str, env: dict[str, str]) -> ServiceSettings:
    """The settings a server started with ``env`` reads, read here from the same variables."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return settings_class(name)()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kit_for(name: str, env: dict[str, str]) -> ServiceKit:
    """The service's kit as its app builds it: its database, and its outbox for the events seeding records."""
    from services.kit.app import ServiceKit

    kit = ServiceKit.build(settings_from(name, env))
    outbox = getattr(importlib.import_module(f"services.{name}.models"), "OUTBOX", None)
    if outbox is not None:
        kit.db.record_events_in(outbox, source=kit.settings.service_name)
    return kit


async def _prepare(name: str, env: dict[str, str], catalogue: bool) -> None:
    from services.kit.migrations import upgrade

    kit = kit_for(name, env)
    try:
        await upgrade(kit.db, importlib.import_module(f"services.{name}.app").MIGRATIONS)
        if catalogue:
            from services.courses.demo import seed_catalogue

            async with kit.db.session_scope() as db:
                await seed_catalogue(db=db)
    finally:
        await kit.close()


def prepare(name: str, env: dict[str, str], *, catalogue: bool = False) -> None:
    """Migrates the service's schema (and loads the demo catalogue into courses) before any server starts."""
    asyncio.run(_prepare(name, env, catalogue))
