from services.kit.migrations import run_alembic_env
from services.users.models import UsersBase

run_alembic_env(UsersBase.metadata)
