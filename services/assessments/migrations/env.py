from services.assessments.models import AssessmentsBase
from services.kit.migrations import run_alembic_env

run_alembic_env(AssessmentsBase.metadata)
