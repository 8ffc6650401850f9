"""payment rails: WeChat Pay / Alipay channel and trade number on payments, longer cashier URLs, bill mismatches

Revision ID: pay1
Revises: ui1
Create Date: 2026-12-06 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import waimai.core.database

revision: str = 'pay1'
down_revision: str | None = 'ui1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('transaction_id', sa.String(length=64), nullable=True))
        batch_op.alter_column('pay_url', existing_type=sa.String(length=300), type_=sa.String(length=2000),
                              existing_nullable=True)
        batch_op.alter_column('status', existing_type=sa.String(length=12), type_=sa.String(length=16),
                              existing_nullable=False)
    op.create_table('bill_mismatches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('bill_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=False),
    sa.Column('bill_amount_fen', sa.Integer(), nullable=True),
    sa.Column('our_amount_fen', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('created_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_mismatches')),
    sa.UniqueConstraint('provider', 'bill_date', 'kind', 'out_trade_no', name='uq_bill_mismatch')
    )
    with op.batch_alter_table('bill_mismatches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bill_mismatches_bill_date'), ['bill_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bill_mismatches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bill_mismatches_bill_date'))
    op.drop_table('bill_mismatches')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16), type_=sa.String(length=12),
                              existing_nullable=False)
        batch_op.alter_column('pay_url', existing_type=sa.String(length=2000), type_=sa.String(length=300),
                              existing_nullable=True)
        batch_op.drop_column('transaction_id')
        batch_op.drop_column('channel')
