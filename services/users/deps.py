from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.users.service import AuthContext


async def get_auth_context(request: Request) -> AuthContext:
    ctx: AuthContext = request.app.state.auth
    return ctx


AuthDep = Annotated[AuthContext, Depends(get_auth_context)]
