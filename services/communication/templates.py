"""Message templates: stored, versioned per channel, and seeded with the academy's defaults."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.defaults import DEFAULT_TEMPLATES
from services.communication.models import MessageTemplate
from services.communication.rendering import variables_of
from services.communication.schemas import TemplateCreate, TemplateFilters, TemplateOut
from services.kit.db import is_unique_violation
from services.kit.errors import Conflict, InvalidInput, NotFound
from services.kit.time import as_utc, utcnow

log = structlog.get_logger("cerebrum.communication")


def template_out(template: MessageTemplate) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        name=template.name,
        channel=template.channel,  # type: ignore[arg-type]
        version=template.version,
        subject=template.subject,
        body=template.body,
        variables=list(template.variables),
        active=template.active,
        created_at=as_utc(template.created_at),
    )


async def create_template(*, db: AsyncSession, request: TemplateCreate, created_by: uuid.UUID) -> TemplateOut:
    """Adds a template's next version on its channel; the versions before it stop being used."""
    variables = variables_of(request.subject, request.body)
    version = await repository.latest_version(db=db, name=request.name, channel=request.channel) + 1
    await repository.deactivate_templates(db=db, name=request.name, channel=request.channel)
    template = MessageTemplate(
        id=uuid.uuid4(),
        name=request.name,
        channel=request.channel,
        version=version,
        subject=request.subject,
        body=request.body,
        variables=variables,
        active=True,
        created_by=created_by,
        created_at=utcnow(),
    )
    try:
        async with db.begin_nested():
            await repository.add(db=db, rows=[template])
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict("The template was changed at the same moment; send the change again") from exc
        raise
    log.info("template_versioned", template=request.name, channel=request.channel, version=version)
    return template_out(template)


async def list_templates(*, db: AsyncSession, filters: TemplateFilters) -> list[TemplateOut]:
    """Lists the active templates (or every version) by name and channel."""
    return [template_out(t) for t in await repository.list_templates(db=db, filters=filters)]


async def templates_for(
    db: AsyncSession, *, name: str, channels: Sequence[str] | None, explicit: bool
) -> Sequence[MessageTemplate]:
    """The active versions of a template to send; every channel asked for explicitly must have one."""
    found = await repository.active_templates(db=db, name=name, channels=channels)
    if not found:
        raise NotFound(f"No active template named {name}" + (f" for {', '.join(channels)}" if channels else ""))
    if explicit and channels is not None:
        missing = sorted(set(channels) - {t.channel for t in found})
        if missing:
            raise InvalidInput(
                f"Template {name} has no version for {', '.join(missing)}",
                errors=[{"field": "channels", "message": f"no {name} template for {c}"} for c in missing],
            )
    return found


async def seed_default_templates(*, db: AsyncSession) -> int:
    """Adds the academy's default templates where no version of them exists yet."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "name": t.name,
            "channel": t.channel,
            "version": 1,
            "subject": t.subject,
            "body": t.body,
            "variables": variables_of(t.subject, t.body),
            "active": True,
            "created_by": None,
            "created_at": now,
        }
        for t in DEFAULT_TEMPLATES
    ]
    return await repository.add_templates_if_missing(db=db, rows=rows)
