from services.courses.models import CoursesBase
from services.kit.migrations import run_alembic_env

run_alembic_env(CoursesBase.metadata)
