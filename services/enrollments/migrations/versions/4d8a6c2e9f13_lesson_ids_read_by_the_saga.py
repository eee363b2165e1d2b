"""lesson ids read by the saga

Revision ID: 4d8a6c2e9f13
Revises: 1ea2a5b01f8b
Create Date: 2026-12-04 01:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4d8a6c2e9f13'
down_revision: Union[str, Sequence[str], None] = '1ea2a5b01f8b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # The course's lessons as the saga read them: the enrolment starts with them, so that its first
    # progress update need not ask courses again.
    with op.batch_alter_table('enrollment_sagas') as batch_op:
        batch_op.add_column(sa.Column('lesson_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('enrollment_sagas') as batch_op:
        batch_op.drop_column('lesson_ids')
