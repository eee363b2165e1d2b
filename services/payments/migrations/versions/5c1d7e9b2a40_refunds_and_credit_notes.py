"""refunds and credit notes

Revision ID: 5c1d7e9b2a40
Revises: 878a58c727f7
Create Date: 2026-12-03 15:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5c1d7e9b2a40'
down_revision: Union[str, Sequence[str], None] = '878a58c727f7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('refunds',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('amount_paise', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('provider_refund_id', sa.String(length=64), nullable=False),
    sa.Column('provider_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id'),
    sa.UniqueConstraint('payment_id')
    )
    op.create_index(op.f('ix_refunds_user_id'), 'refunds', ['user_id'], unique=False)
    op.create_table('credit_note_counters',
    sa.Column('financial_year', sa.String(length=7), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('financial_year')
    )
    op.create_table('credit_notes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('financial_year', sa.String(length=7), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('refund_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('total_paise', sa.BigInteger(), nullable=False),
    sa.Column('base_paise', sa.BigInteger(), nullable=False),
    sa.Column('gst_paise', sa.BigInteger(), nullable=False),
    sa.Column('gst_rate_percent', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_history.id'], ),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('financial_year', 'sequence'),
    sa.UniqueConstraint('invoice_id'),
    sa.UniqueConstraint('number'),
    sa.UniqueConstraint('refund_id')
    )
    op.create_index(op.f('ix_credit_notes_user_id'), 'credit_notes', ['user_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_credit_notes_user_id'), table_name='credit_notes')
    op.drop_table('credit_notes')
    op.drop_table('credit_note_counters')
    op.drop_index(op.f('ix_refunds_user_id'), table_name='refunds')
    op.drop_table('refunds')
