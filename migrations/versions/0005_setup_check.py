"""setup_check: the results of `connector doctor` runs, for the console's setup panel

Revision ID: 0005_setup_check
Revises: 0004_reconciliation
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_setup_check'
down_revision = '0004_reconciliation'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('setup_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('results', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_setup_check'))
    )
    with op.batch_alter_table('setup_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_setup_check_checked_at'), ['checked_at'], unique=False)


def downgrade():
    with op.batch_alter_table('setup_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_setup_check_checked_at'))

    op.drop_table('setup_check')
