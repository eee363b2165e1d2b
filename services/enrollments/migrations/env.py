from services.enrollments.models import EnrollmentsBase
from services.kit.migrations import run_alembic_env

run_alembic_env(EnrollmentsBase.metadata)
