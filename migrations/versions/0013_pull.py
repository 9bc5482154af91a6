"""Pull Transactions: each bar's registration and the job's last window

Revision ID: 0013_pull
Revises: 0012_verify
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_pull'
down_revision = '0012_verify'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'c2b_pull',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('nominated_number', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('registered_at', sa.DateTime(), nullable=True),
        sa.Column('window_end', sa.DateTime(), nullable=True),
        sa.Column('last_run_at', sa.DateTime(), nullable=True),
        sa.Column('last_success_at', sa.DateTime(), nullable=True),
        sa.Column('last_found', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_error', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_c2b_pull_bar_id_bar')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_c2b_pull')),
        sa.UniqueConstraint('bar_id', name=op.f('uq_c2b_pull_bar_id')),
    )
    with op.batch_alter_table('c2b_confirmation', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('source', sa.String(length=10), server_default='callback', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('c2b_confirmation', schema=None) as batch_op:
        batch_op.drop_column('source')
    op.drop_table('c2b_pull')
