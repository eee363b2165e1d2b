"""trace context of queued messages

Revision ID: 3b7e2f9a41c6
Revises: 94f1d039cc43
Create Date: 2026-12-03 12:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3b7e2f9a41c6'
down_revision: Union[str, Sequence[str], None] = '94f1d039cc43'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # The sends of a message join the trace of the request or event that queued it.
    with op.batch_alter_table('communication_logs') as batch_op:
        batch_op.add_column(sa.Column('trace_headers', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('communication_logs') as batch_op:
        batch_op.drop_column('trace_headers')
