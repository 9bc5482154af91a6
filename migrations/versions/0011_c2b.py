"""money from the M-Pesa menu: each bar's C2B URL secret, and confirmations stored as they arrive

Revision ID: 0011_c2b
Revises: 0010_pending_credentials
Create Date: 2026-12-07 02:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_c2b'
down_revision = '0010_pending_credentials'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'c2b_registration',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('url_secret', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('registered_at', sa.DateTime(), nullable=True),
        sa.Column('last_confirmation_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_c2b_registration_bar_id_bar')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_c2b_registration')),
        sa.UniqueConstraint('bar_id', name=op.f('uq_c2b_registration_bar_id')),
        sa.UniqueConstraint('url_secret', name=op.f('uq_c2b_registration_url_secret')),
    )
    op.create_table(
        'c2b_confirmation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=True),
        sa.Column('raw_body', sa.Text(), nullable=False),
        sa.Column('body_size', sa.Integer(), nullable=False),
        sa.Column('source_address', sa.String(length=64), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('disposition', sa.String(length=20), nullable=False),
        sa.Column('trans_id', sa.String(length=20), nullable=True),
        sa.Column('amount', sa.Integer(), nullable=True),
        sa.Column('shortcode', sa.String(length=12), nullable=True),
        sa.Column('account', sa.String(length=40), nullable=True),
        sa.Column('payer_name', sa.String(length=120), nullable=True),
        sa.Column('msisdn', sa.String(length=64), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_c2b_confirmation_bar_id_bar')),
        sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_c2b_confirmation_payment_id_payment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_c2b_confirmation')),
    )
    op.create_index('ix_c2b_confirmation_bar_id', 'c2b_confirmation', ['bar_id'], unique=False)
    op.create_index('ix_c2b_confirmation_trans_id', 'c2b_confirmation', ['trans_id'], unique=False)


def downgrade():
    op.drop_index('ix_c2b_confirmation_trans_id', table_name='c2b_confirmation')
    op.drop_index('ix_c2b_confirmation_bar_id', table_name='c2b_confirmation')
    op.drop_table('c2b_confirmation')
    op.drop_table('c2b_registration')
