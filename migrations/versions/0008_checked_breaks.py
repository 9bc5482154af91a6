"""a closed tab or a kept callback can be marked as checked (reconciliation breaks)

Revision ID: 0008_checked_breaks
Revises: 0007_shared_tokens
Create Date: 2026-11-22 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_checked_breaks'
down_revision = '0007_shared_tokens'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: adding them rewrites nothing on PostgreSQL, whatever the table's size.
    op.add_column('tab', sa.Column('checked_at', sa.DateTime(), nullable=True))
    op.add_column('callback_event', sa.Column('checked_at', sa.DateTime(), nullable=True))


def downgrade():
    # In place, not batch mode: on SQLite a batch copy of tab is refused (rows point at it).
    op.drop_column('callback_event', 'checked_at')
    op.drop_column('tab', 'checked_at')
