"""A deleted account's raw events keep what the aggregates count and lose what the client said.

Analytics knows people only by id and never keeps a name or an address from the services'
events (``handlers._NOT_KEPT``). What a client sends with its learning events is free-form,
though, and may name the person; on ``user.deleted`` those properties are cut down to the keys
the aggregates read, so the person's counts stay and nothing they or their app wrote does.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import repository
from services.contracts.events import UserDeleted
from services.kit.events import Event

log = structlog.get_logger("cerebrum.analytics")

COUNTED = ("seconds", "topic", "correct")
"""The properties of a client's event that the aggregates read (``schemas.EventProperties``)."""


async def on_user_deleted(event: Event, db: AsyncSession) -> None:
    """Cuts the deleted user's client events down to the properties the aggregates count."""
    deleted = UserDeleted.model_validate(event.data)
    changed = await repository.keep_only_properties(db=db, user_id=deleted.user_id, keys=COUNTED)
    log.info("client_events_pseudonymised", user_id=str(deleted.user_id), events=changed)
