"""The services whose data moves: each one's tables (its SQLAlchemy metadata) and its migrations.

Read from the services' own models, not from the ``cerebrum`` registry: ``cerebrum`` composes
this tool into its CLI, so the tool importing ``cerebrum`` back would make a cycle.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from sqlalchemy import MetaData

from services.analytics import models as analytics
from services.assessments import models as assessments
from services.communication import models as communication
from services.courses import models as courses
from services.enrollments import models as enrollments
from services.payments import models as payments
from services.users import models as users


def _migrations(models: ModuleType) -> Path:
    return Path(models.__file__ or "").parent / "migrations"


SERVICE_MODELS: dict[str, tuple[MetaData, Path]] = {
    "users": (users.UsersBase.metadata, _migrations(users)),
    "courses": (courses.CoursesBase.metadata, _migrations(courses)),
    "enrollments": (enrollments.EnrollmentsBase.metadata, _migrations(enrollments)),
    "payments": (payments.PaymentsBase.metadata, _migrations(payments)),
    "analytics": (analytics.AnalyticsBase.metadata, _migrations(analytics)),
    "communication": (communication.CommunicationBase.metadata, _migrations(communication)),
    "assessments": (assessments.AssessmentsBase.metadata, _migrations(assessments)),
}
"""In the order the platform registers them (``cerebrum.registry``; a test keeps the two alike)."""
