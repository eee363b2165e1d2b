from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.assessments.service import AssessmentsContext
from services.kit.deps import from_app_state

ContextDep = Annotated[AssessmentsContext, Depends(from_app_state("assessments"))]
