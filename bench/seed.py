"""Schemas and data a benchmark needs, made in this process as `cerebrum db upgrade` and `seed catalogue` make them."""

from __future__ import annotations

import asyncio
import importlib
import os

from services.kit.settings import ServiceSettings


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


async def _prepare(name: str, env: dict[str, str], catalogue: bool) -> None:
    from services.kit.app import ServiceKit
    from services.kit.migrations import upgrade

    kit = ServiceKit.build(settings_from(name, env))
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
