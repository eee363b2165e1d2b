"""subscription plan catalogue, seeded with the academy's plans

Revision ID: 9b3e4f6a7c21
Revises: 5c1d7e9b2a40
Create Date: 2026-12-03 15:10:00.000000

"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9b3e4f6a7c21'
down_revision: Union[str, Sequence[str], None] = '5c1d7e9b2a40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The academy's plans (GST-inclusive); admins reprice, add and retire them through the API.
SEED = [
    ("neet-monthly", "NEET Biology, monthly", 99_900, "monthly"),
    ("neet-yearly", "NEET Biology, yearly", 999_900, "yearly"),
]


def upgrade() -> None:
    """Upgrade schema."""
    plans = op.create_table('subscription_plans',
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('amount_paise', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        plans,
        [
            {
                "code": code,
                "name": name,
                "amount_paise": amount,
                "currency": "INR",
                "period": period,
                "created_at": now,
                "updated_at": now,
                "retired_at": None,
            }
            for code, name, amount, period in SEED
        ],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('subscription_plans')
