"""a C2B confirmation kept without being applied can be marked as checked (reconciliation breaks)

Revision ID: 0017_c2b_checked
Revises: 0016_reversals
Create Date: 2026-12-07 15:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017_c2b_checked"
down_revision = "0016_reversals"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default (as 0008's checked_at): adding it rewrites nothing on PostgreSQL.
    with op.batch_alter_table("c2b_confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(), nullable=True))


def downgrade():
    # On SQLite a batch copy of c2b_confirmation: no row of another table points at it.
    with op.batch_alter_table("c2b_confirmation", schema=None) as batch_op:
        batch_op.drop_column("checked_at")
