from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.enrollments.service import EnrollmentsContext
from services.kit.deps import from_app_state

EnrollmentsDep = Annotated[EnrollmentsContext, Depends(from_app_state("enrollments"))]
