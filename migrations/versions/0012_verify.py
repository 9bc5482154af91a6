"""verify a customer's code: the bar's initiator credentials and Transaction Status queries

Revision ID: 0012_verify
Revises: 0011_c2b
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_verify'
down_revision = '0011_c2b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'initiator_credential',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('initiator_name', sa.String(length=64), nullable=False),
        sa.Column('password_sealed', sa.Text(), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('certificate_pem', sa.Text(), nullable=False),
        sa.Column('certificate_subject', sa.String(length=255), nullable=False),
        sa.Column('certificate_expires_at', sa.DateTime(), nullable=False),
        sa.Column('saved_at', sa.DateTime(), nullable=False),
        sa.Column('refused_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_initiator_credential_bar_id_bar')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_initiator_credential')),
        sa.UniqueConstraint('bar_id', name=op.f('uq_initiator_credential_bar_id')),
    )
    op.create_table(
        'initiator_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('url_secret', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=20), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('originator_conversation_id', sa.String(length=64), nullable=True),
        sa.Column('conversation_id', sa.String(length=64), nullable=True),
        sa.Column('result_code', sa.String(length=16), nullable=True),
        sa.Column('result_desc', sa.String(length=255), nullable=True),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_initiator_request_bar_id_bar')),
        sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_initiator_request_requested_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_initiator_request')),
        sa.UniqueConstraint('url_secret', name=op.f('uq_initiator_request_url_secret')),
    )
    op.create_index('ix_initiator_request_bar_id_kind_subject', 'initiator_request', ['bar_id', 'kind', 'subject', 'id'], unique=False)
    op.create_table(
        'initiator_result',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=True),
        sa.Column('endpoint', sa.String(length=8), nullable=False),
        sa.Column('raw_body', sa.Text(), nullable=False),
        sa.Column('body_size', sa.Integer(), nullable=False),
        sa.Column('source_address', sa.String(length=64), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('disposition', sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['initiator_request.id'], name=op.f('fk_initiator_result_request_id_initiator_request')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_initiator_result')),
    )
    op.create_index('ix_initiator_result_request_id', 'initiator_result', ['request_id'], unique=False)


def downgrade():
    op.drop_index('ix_initiator_result_request_id', table_name='initiator_result')
    op.drop_table('initiator_result')
    op.drop_index('ix_initiator_request_bar_id_kind_subject', table_name='initiator_request')
    op.drop_table('initiator_request')
    op.drop_table('initiator_credential')
