"""pending credentials: a live bar's new Daraja credentials wait, sealed, until proved

Revision ID: 0010_pending_credentials
Revises: 0009_counter
Create Date: 2026-12-07 03:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_pending_credentials'
down_revision = '0009_counter'
branch_labels = None
depends_on = None

COLUMNS = (
    ('pending_environment', sa.String(length=12)),
    ('pending_kind', sa.String(length=8)),
    ('pending_shortcode', sa.String(length=8)),
    ('pending_till_number', sa.String(length=8)),
    ('pending_consumer_key_sealed', sa.Text()),
    ('pending_consumer_secret_sealed', sa.Text()),
    ('pending_passkey_sealed', sa.Text()),
    ('pending_consumer_key_last4', sa.String(length=4)),
    ('pending_revision', sa.Integer()),
    ('pending_saved_at', sa.DateTime()),
    ('pending_checked_at', sa.DateTime()),
)


def upgrade():
    # Nullable, no default: adding them rewrites nothing on PostgreSQL, whatever the table's size.
    for name, type_ in COLUMNS:
        op.add_column('mpesa_credential', sa.Column(name, type_, nullable=True))


def downgrade():
    # In place, not batch mode (as 0008): SQLite drops a column without copying the table.
    # Pending credentials are lost; the ones in use stay.
    for name, _type in reversed(COLUMNS):
        op.drop_column('mpesa_credential', name)
