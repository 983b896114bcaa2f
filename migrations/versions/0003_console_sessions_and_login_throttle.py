"""console sessions held server-side, login throttle counters

Revision ID: 0003_console_sessions
Revises: 0002_console
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_console_sessions'
down_revision = '0002_console'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('console_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handle_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_user_id', sa.Integer(), nullable=False),
    sa.Column('credential_stamp', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['operator_user_id'], ['operator_user.id'], name=op.f('fk_console_session_operator_user_id_operator_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_session')),
    sa.UniqueConstraint('handle_hash', name=op.f('uq_console_session_handle_hash'))
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_operator_user_id'), ['operator_user_id'], unique=False)

    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('window_started_at', sa.DateTime(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )


def downgrade():
    op.drop_table('login_throttle')
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_session_operator_user_id'))
    op.drop_table('console_session')
