"""security (authentication and data): token versions, proof-code attempts, security alerts

Revision ID: secauth1
Revises: alerts1
Create Date: 2026-12-06 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import waimai.core.database

revision: str = 'secauth1'
down_revision: str | None = 'alerts1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='0', nullable=False))

    op.create_table('proof_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_proof_attempts_order_id_orders')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_proof_attempts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proof_attempts'))
    )
    with op.batch_alter_table('proof_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proof_attempts_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_proof_attempts_user_at', ['user_id', 'at'], unique=False)

    op.create_table('security_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_alerts'))
    )
    with op.batch_alter_table('security_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_security_alerts_kind_subject_at', ['kind', 'subject', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('security_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_security_alerts_kind_subject_at')
        batch_op.drop_index(batch_op.f('ix_security_alerts_created_at'))
    op.drop_table('security_alerts')
    with op.batch_alter_table('proof_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_proof_attempts_user_at')
        batch_op.drop_index(batch_op.f('ix_proof_attempts_order_id'))
    op.drop_table('proof_attempts')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_version')
