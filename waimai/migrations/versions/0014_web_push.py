"""web push: browsers' push subscriptions per user, the push outbox, the VAPID key generated once

Revision ID: push1
Revises: pay1
Create Date: 2026-12-06 06:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import waimai.core.database

revision: str = 'push1'
down_revision: str | None = 'pay1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('push_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('private_key', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('created_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_keys'))
    )
    op.create_table('push_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=800), nullable=False),
    sa.Column('p256dh', sa.String(length=100), nullable=False),
    sa.Column('auth', sa.String(length=40), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('created_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', waimai.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_push_subscriptions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_subscriptions')),
    sa.UniqueConstraint('endpoint', name=op.f('uq_push_subscriptions_endpoint'))
    )
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_subscriptions_user_id'), ['user_id'], unique=False)

    op.create_table('push_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=500), nullable=False),
    sa.Column('url', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', waimai.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['push_subscriptions.id'], name=op.f('fk_push_messages_subscription_id_push_subscriptions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_push_messages_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_messages')),
    sa.UniqueConstraint('subscription_id', 'ref', name='uq_push_message_sub_ref')
    )
    with op.batch_alter_table('push_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_messages_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_push_messages_state_next', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_messages_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_messages_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('push_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_messages_user_id'))
        batch_op.drop_index(batch_op.f('ix_push_messages_subscription_id'))
        batch_op.drop_index('ix_push_messages_state_next')
        batch_op.drop_index(batch_op.f('ix_push_messages_created_at'))

    op.drop_table('push_messages')
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_subscriptions_user_id'))

    op.drop_table('push_subscriptions')
    op.drop_table('push_keys')
