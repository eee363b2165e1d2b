from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response

from services.kit.deps import CurrentUser, from_app_state
from services.users import service
from services.users.service import AuthContext

AuthDep = Annotated[AuthContext, Depends(from_app_state("auth"))]


# A stamp for the gateway's copy (kit.edge), taken as a dependency: before the route reads the data.
async def _offer_profile(identity: CurrentUser, response: Response, ctx: AuthDep) -> None:
    await service.offer_profile(ctx=ctx, headers=response.headers, user_id=identity.user_id)


OFFER_PROFILE = Depends(_offer_profile)
