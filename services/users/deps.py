from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.kit.deps import from_app_state
from services.users.service import AuthContext

AuthDep = Annotated[AuthContext, Depends(from_app_state("auth"))]
