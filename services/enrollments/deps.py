from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.enrollments.service import EnrollmentsContext


async def get_enrollments_context(request: Request) -> EnrollmentsContext:
    ctx: EnrollmentsContext = request.app.state.enrollments
    return ctx


EnrollmentsDep = Annotated[EnrollmentsContext, Depends(get_enrollments_context)]
