"""console roles, user disabling, audit trail, indexes for the order timeline

Revision ID: 0002_console
Revises: 0001
Create Date: 2026-12-03 08:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0002_console'
down_revision = '0001'
branch_labels = None
depends_on = None

NO_UPDATE = "audit_event is append-only"


def upgrade():
    with op.batch_alter_table('operator_user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('role', sa.String(length=16), server_default='admin', nullable=False)
        )
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('mirakl_id', sa.String(length=255), nullable=True),
    sa.Column('reason', sa.String(length=1024), nullable=True),
    sa.Column('outcome', sa.String(length=1024), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_target', ['target_type', 'target_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_mirakl_id'), ['mirakl_id'], unique=False)
    # The order timeline looks rows up by charge id (a million rows: no full scans).
    with op.batch_alter_table('stripe_transfer', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_stripe_transfer_transaction_id'), ['transaction_id'], unique=False
        )
    with op.batch_alter_table('stripe_refund', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_stripe_refund_transaction_id'), ['transaction_id'], unique=False
        )
    # The shop page lists a shop's account.updated events.
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_event_account'), ['account'], unique=False)
    # Append-only, enforced by the database: an UPDATE of an audit row fails.
    if op.get_bind().dialect.name == 'postgresql':
        # The timeline finds a row's notifications by key prefix (LIKE 'transfer.failed:12:%').
        op.execute(
            "CREATE INDEX ix_notification_dedupe_key_prefix "
            "ON notification (dedupe_key varchar_pattern_ops)"
        )
        op.execute(
            "CREATE FUNCTION audit_event_no_update() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{NO_UPDATE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_no_update()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            f"BEGIN SELECT RAISE(ABORT, '{NO_UPDATE}'); END"
        )


def downgrade():
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_event_account'))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX ix_notification_dedupe_key_prefix")
        op.execute("DROP TRIGGER audit_event_no_update ON audit_event")
        op.execute("DROP FUNCTION audit_event_no_update()")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
    with op.batch_alter_table('stripe_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_refund_transaction_id'))
    with op.batch_alter_table('stripe_transfer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_transfer_transaction_id'))
    op.drop_table('audit_event')
    with op.batch_alter_table('operator_user', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('role')
