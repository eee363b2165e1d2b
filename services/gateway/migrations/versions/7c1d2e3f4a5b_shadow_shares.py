"""shadow shares

Revision ID: 7c1d2e3f4a5b
Revises: 50baff0cec23
Create Date: 2026-12-03 15:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7c1d2e3f4a5b'
down_revision: Union[str, Sequence[str], None] = '50baff0cec23'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('shadow_shares',
    sa.Column('prefix', sa.String(length=40), nullable=False),
    sa.Column('percent', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=True),
    sa.PrimaryKeyConstraint('prefix')
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('shadow_shares')
