from services.gateway.models import GatewayBase
from services.kit.migrations import run_alembic_env

run_alembic_env(GatewayBase.metadata)
