from services.kit.migrations import run_alembic_env
from services.payments.models import PaymentsBase

run_alembic_env(PaymentsBase.metadata)
