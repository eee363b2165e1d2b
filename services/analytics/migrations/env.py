from services.analytics.models import AnalyticsBase
from services.kit.migrations import run_alembic_env

run_alembic_env(AnalyticsBase.metadata)
