"""Daraja OAuth tokens shared by every process (benchmark 4, token economy)

Revision ID: 0007_shared_tokens
Revises: 0006_scale_indexes
Create Date: 2026-11-23 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_shared_tokens'
down_revision = '0006_scale_indexes'
branch_labels = None
depends_on = None


def upgrade():
    # One row per credential set: an HMAC of the cache key, the token sealed with the key ring.
    op.create_table('daraja_token',
    sa.Column('cache_key', sa.String(length=64), nullable=False),
    sa.Column('sealed_token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('cache_key', name=op.f('pk_daraja_token'))
    )


def downgrade():
    # Nothing is lost: every process fetches a token of its own again.
    op.drop_table('daraja_token')
