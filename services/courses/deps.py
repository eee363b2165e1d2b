from __future__ import annotations

import re
import uuid
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request, Response

from services.courses import service
from services.courses.content import Upload
from services.courses.schemas import Grade
from services.courses.service import CoursesContext
from services.kit.auth import Identity
from services.kit.deps import KitDep, from_app_state, get_identity
from services.kit.errors import InvalidInput

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}(\s*;.{0,60})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


CoursesDep = Annotated[CoursesContext, Depends(from_app_state("courses"))]


async def get_optional_identity(
    kit: KitDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Identity | None:
    """The caller when a token is sent (a bad token is still refused); None for an anonymous visitor."""
    if authorization is None:
        return None
    return await get_identity(kit, authorization)


MaybeUser = Annotated[Identity | None, Depends(get_optional_identity)]


# Stamps for the gateway's copies (kit.edge), taken as dependencies: before the route reads the data.
async def _offer_catalogue(response: Response, ctx: CoursesDep, identity: MaybeUser) -> None:
    await service.offer_catalogue(ctx=ctx, headers=response.headers, identity=identity)


async def _offer_course(course_id: uuid.UUID, response: Response, ctx: CoursesDep) -> None:
    await service.offer_course(ctx=ctx, headers=response.headers, course_id=course_id)


async def _offer_curriculum(grade: Grade, response: Response, ctx: CoursesDep) -> None:
    await service.offer_curriculum(ctx=ctx, headers=response.headers, grade=grade)


OFFER_CATALOGUE = Depends(_offer_catalogue)
OFFER_COURSE = Depends(_offer_course)
OFFER_CURRICULUM = Depends(_offer_curriculum)


def safe_filename(raw: str | None) -> str:
    """The base name of an uploaded file (percent-decoded), with no path and no control characters."""
    if raw is None or not raw.strip():
        raise InvalidInput(
            "Name the file in an X-Filename header", errors=[{"field": "X-Filename", "message": "missing"}]
        )
    name = _CONTROL.sub("", unquote(raw)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", "..") or len(name) > 255:
        raise InvalidInput(
            "X-Filename is not a usable file name", errors=[{"field": "X-Filename", "message": "invalid"}]
        )
    return name


async def read_upload(
    request: Request,
    ctx: CoursesDep,
    x_filename: Annotated[str | None, Header(description="The file's name, percent-encoded if not ASCII")] = None,
) -> Upload:
    """Reads a raw-body upload (no multipart): bytes in the body, type in Content-Type, name in X-Filename."""
    filename = safe_filename(x_filename)
    content_type = (request.headers.get("content-type") or "application/octet-stream").strip().lower()
    if not _MEDIA_TYPE.match(content_type) or content_type.startswith("multipart/"):
        raise InvalidInput(
            "Send the file's own bytes as the body with its media type in Content-Type (multipart is not accepted)",
            errors=[{"field": "Content-Type", "message": "invalid"}],
        )
    data = await request.body()  # at most max_upload_bytes: the app's body limit for this route (kit.bodylimit)
    if not data:
        raise InvalidInput("The file is empty", errors=[{"field": "body", "message": "empty"}])
    return Upload(filename=filename, content_type=content_type, data=data)


UploadDep = Annotated[Upload, Depends(read_upload)]
