from services.communication.models import CommunicationBase
from services.kit.migrations import run_alembic_env

run_alembic_env(CommunicationBase.metadata)
