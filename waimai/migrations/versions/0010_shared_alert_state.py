"""shared alert state (alerts, groups, silences, notification log) and replica heartbeats

Revision ID: alerts1
Revises: 0009
Create Date: 2026-12-06 03:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import waimai.core.database

revision: str = 'alerts1'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = waimai.core.database.UTCDateTime


def upgrade() -> None:
    op.create_table('alert_states',
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('annotations', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('starts_at', UTC(timezone=True), nullable=False),
    sa.Column('ends_at', UTC(timezone=True), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('generator', sa.String(length=40), nullable=False),
    sa.Column('acked_by', sa.String(length=80), nullable=True),
    sa.Column('acked_at', UTC(timezone=True), nullable=True),
    sa.Column('flaps', sa.Integer(), nullable=False),
    sa.Column('updated_at', UTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_alert_states'))
    )
    op.create_index(op.f('ix_alert_states_updated_at'), 'alert_states', ['updated_at'], unique=False)
    op.create_table('alert_groups',
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('route', sa.JSON(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=True),
    sa.Column('last_flush', UTC(timezone=True), nullable=True),
    sa.Column('last_sent_at', UTC(timezone=True), nullable=True),
    sa.Column('last_digest', sa.String(length=64), nullable=False),
    sa.Column('first_firing_at', UTC(timezone=True), nullable=True),
    sa.Column('escalation_step', sa.Integer(), nullable=False),
    sa.Column('acked_by', sa.String(length=80), nullable=True),
    sa.Column('acked_at', UTC(timezone=True), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('updated_at', UTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_alert_groups'))
    )
    op.create_index(op.f('ix_alert_groups_updated_at'), 'alert_groups', ['updated_at'], unique=False)
    op.create_table('alert_silences',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('starts_at', UTC(timezone=True), nullable=False),
    sa.Column('ends_at', UTC(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('comment', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_silences'))
    )
    op.create_index(op.f('ix_alert_silences_ends_at'), 'alert_silences', ['ends_at'], unique=False)
    op.create_table('alert_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', UTC(timezone=True), nullable=False),
    sa.Column('group_key', sa.String(length=500), nullable=False),
    sa.Column('step', sa.String(length=40), nullable=False),
    sa.Column('receiver', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('claimed_by', sa.String(length=120), nullable=True),
    sa.Column('claimed_at', UTC(timezone=True), nullable=True),
    sa.Column('message', sa.JSON(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_notifications')),
    sa.UniqueConstraint('group_key', 'step', 'receiver', name='uq_alert_notifications_step')
    )
    op.create_index(op.f('ix_alert_notifications_at'), 'alert_notifications', ['at'], unique=False)
    op.create_index(op.f('ix_alert_notifications_state'), 'alert_notifications', ['state'], unique=False)
    op.create_table('replica_heartbeats',
    sa.Column('replica', sa.String(length=120), nullable=False),
    sa.Column('roles', sa.String(length=60), nullable=False),
    sa.Column('beat_at', UTC(timezone=True), nullable=False),
    sa.Column('read_only_seen', sa.String(length=40), nullable=True),
    sa.Column('writes_in_flight', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('replica', name=op.f('pk_replica_heartbeats'))
    )
    op.create_index(op.f('ix_replica_heartbeats_beat_at'), 'replica_heartbeats', ['beat_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_replica_heartbeats_beat_at'), table_name='replica_heartbeats')
    op.drop_table('replica_heartbeats')
    op.drop_index(op.f('ix_alert_notifications_state'), table_name='alert_notifications')
    op.drop_index(op.f('ix_alert_notifications_at'), table_name='alert_notifications')
    op.drop_table('alert_notifications')
    op.drop_index(op.f('ix_alert_silences_ends_at'), table_name='alert_silences')
    op.drop_table('alert_silences')
    op.drop_index(op.f('ix_alert_groups_updated_at'), table_name='alert_groups')
    op.drop_table('alert_groups')
    op.drop_index(op.f('ix_alert_states_updated_at'), table_name='alert_states')
    op.drop_table('alert_states')
