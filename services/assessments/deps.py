from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.assessments.service import AssessmentsContext


async def get_context(request: Request) -> AssessmentsContext:
    ctx: AssessmentsContext = request.app.state.assessments
    return ctx


ContextDep = Annotated[AssessmentsContext, Depends(get_context)]
