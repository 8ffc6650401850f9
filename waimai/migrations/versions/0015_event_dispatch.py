"""event dispatch: outbox attempts, retry time and dead letters; per-subscriber deliveries; wake-up on PostgreSQL

Revision ID: evt1
Revises: push1
Create Date: 2026-12-06 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import waimai.core.database

revision: str = 'evt1'
down_revision: str | None = 'push1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On PostgreSQL every committed insert into the outbox wakes the dispatcher (LISTEN waimai_outbox); one
# notification per statement, and PostgreSQL folds identical ones within a transaction.
NOTIFY_FN = """
CREATE OR REPLACE FUNCTION waimai_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('waimai_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', waimai.core.database.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('dead_at', waimai.core.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_dead_at'), ['dead_at'], unique=False)
    op.create_table('outbox_deliveries',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('subscriber', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('updated_at', waimai.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'subscriber', name=op.f('pk_outbox_deliveries'))
    )
    # Every event written before this revision had its reactions run by the hook lists inside its own
    # transaction: delivered. (Without this the dispatcher would replay history: platform callbacks again.)
    op.execute("UPDATE outbox SET published_at = created_at WHERE published_at IS NULL")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(NOTIFY_FN)
        op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT "
                   "EXECUTE FUNCTION waimai_outbox_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
        op.execute("DROP FUNCTION IF EXISTS waimai_outbox_notify()")
    op.drop_table('outbox_deliveries')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_dead_at'))
        batch_op.drop_column('last_error')
        batch_op.drop_column('dead_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
