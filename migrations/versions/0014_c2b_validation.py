"""C2B validation: what the bar answers when asked before the money moves

Revision ID: 0014_c2b_validation
Revises: 0013_pull
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_c2b_validation'
down_revision = '0013_pull'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'c2b_validation_rule',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('rule', sa.String(length=20), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.Column('changed_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_c2b_validation_rule_bar_id_bar')),
        sa.ForeignKeyConstraint(['changed_by'], ['user.id'], name=op.f('fk_c2b_validation_rule_changed_by_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_c2b_validation_rule')),
        sa.UniqueConstraint('bar_id', name=op.f('uq_c2b_validation_rule_bar_id')),
    )
    op.create_table(
        'c2b_validation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=True),
        sa.Column('raw_body', sa.Text(), nullable=False),
        sa.Column('body_size', sa.Integer(), nullable=False),
        sa.Column('source_address', sa.String(length=64), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('account', sa.String(length=40), nullable=True),
        sa.Column('amount_text', sa.String(length=20), nullable=True),
        sa.Column('result_code', sa.String(length=10), nullable=True),
        sa.Column('reason', sa.String(length=20), nullable=True),
        sa.Column('answered_ms', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_c2b_validation_bar_id_bar')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_c2b_validation')),
    )
    op.create_index('ix_c2b_validation_bar_id', 'c2b_validation', ['bar_id'], unique=False)


def downgrade():
    op.drop_index('ix_c2b_validation_bar_id', table_name='c2b_validation')
    op.drop_table('c2b_validation')
    op.drop_table('c2b_validation_rule')
