"""reconciliation findings

Revision ID: 0004_reconciliation
Revises: 0003_console_sessions
Create Date: 2026-12-03 08:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004_reconciliation'
down_revision = '0003_console_sessions'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reconciliation_finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_key', sa.String(length=255), nullable=False),
    sa.Column('finding_class', sa.String(length=32), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('operation_id', sa.Integer(), nullable=True),
    sa.Column('mirakl_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=True),
    sa.Column('our_amount', sa.BigInteger(), nullable=True),
    sa.Column('their_amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('their_currency', sa.String(length=3), nullable=True),
    sa.Column('detail', sa.String(length=1024), nullable=True),
    sa.Column('subject_at', sa.DateTime(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('last_run', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_finding')),
    sa.UniqueConstraint('finding_key', name=op.f('uq_reconciliation_finding_finding_key'))
    )
    with op.batch_alter_table('reconciliation_finding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_finding_class'), ['finding_class'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_first_seen_at'), ['first_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_mirakl_id'), ['mirakl_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_resolved_at'), ['resolved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_stripe_id'), ['stripe_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_finding_subject_at'), ['subject_at'], unique=False)


def downgrade():
    op.drop_table('reconciliation_finding')
