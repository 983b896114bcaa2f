"""64-bit amounts: every amount column becomes BIGINT

Revision ID: 0006_bigint_amounts
Revises: 0005_setup_check
Create Date: 2026-12-03 09:00:00

A 32-bit column holds at most 2,147,483,647 minor units (21.4M in a two-decimal currency,
₩2.1bn), less than a large seller's monthly payout. Batch mode rebuilds the tables on
SQLite (which cannot ALTER a column type) and is a plain ALTER on PostgreSQL; values are kept.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_bigint_amounts"
down_revision = "0005_setup_check"
branch_labels = None
depends_on = None

AMOUNT_COLUMNS = {
    "payment_mapping": ("stripe_amount", "captured_amount"),
    "stripe_transfer": ("amount",),
    "stripe_refund": ("amount",),
    "stripe_payout": ("amount",),
}


def upgrade():
    for table, columns in AMOUNT_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    existing_type=sa.Integer(),
                    type_=sa.BigInteger(),
                    existing_nullable=True,
                )


def downgrade():
    # Fails on PostgreSQL if an amount above 2**31-1 is stored, rather than truncate money.
    for table, columns in AMOUNT_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    existing_type=sa.BigInteger(),
                    type_=sa.Integer(),
                    existing_nullable=True,
                )
