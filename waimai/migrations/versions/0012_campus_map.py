"""campus map: buildings, roads and named areas drawn on the order page and /ops/dispatch

Revision ID: ui1
Revises: secauth1
Create Date: 2026-12-06 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ui1'
down_revision: str | None = 'secauth1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campus_features',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campus_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('points', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['campus_id'], ['campuses.id'], name=op.f('fk_campus_features_campus_id_campuses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campus_features'))
    )
    with op.batch_alter_table('campus_features', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campus_features_campus_id'), ['campus_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campus_features', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campus_features_campus_id'))
    op.drop_table('campus_features')
