"""the counter on a busy night: cash and card tenders, corrected lines, staff without email, language

Revision ID: 0009_counter
Revises: 0008_checked_breaks
Create Date: 2026-12-07 01:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_counter'
down_revision = '0008_checked_breaks'
branch_labels = None
depends_on = None


def _sqlite_foreign_keys(on: bool) -> None:
    """SQLite's batch mode copies a table, drops the old one and renames the copy: with foreign
    keys enforced, dropping `user` (or `tab_line`) while rows point at it fails. Switched off for
    the copy and on again after; the copy keeps every row and every key."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    op.create_table(
        'tender',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bar_id', sa.Integer(), nullable=False),
        sa.Column('tab_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('note', sa.String(length=120), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('removed_at', sa.DateTime(), nullable=True),
        sa.Column('removed_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_tender_amount_positive')),
        sa.ForeignKeyConstraint(['bar_id'], ['bar.id'], name=op.f('fk_tender_bar_id_bar')),
        sa.ForeignKeyConstraint(['tab_id'], ['tab.id'], name=op.f('fk_tender_tab_id_tab')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], name=op.f('fk_tender_recorded_by_id_user')),
        sa.ForeignKeyConstraint(['removed_by_id'], ['user.id'], name=op.f('fk_tender_removed_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tender')),
    )
    op.create_index('ix_tender_tab_id', 'tender', ['tab_id'], unique=False)
    op.create_index('ix_tender_bar_id_created_at', 'tender', ['bar_id', 'created_at'], unique=False)
    # Nullable, no default: adding them rewrites nothing on PostgreSQL, whatever the table's size.
    op.add_column('tab_line', sa.Column('removed_at', sa.DateTime(), nullable=True))
    op.add_column('tab_line', sa.Column('removed_by_id', sa.Integer(), nullable=True))
    op.add_column('user', sa.Column('phone', sa.String(length=12), nullable=True))
    op.add_column('user', sa.Column('locale', sa.String(length=5), nullable=True))
    op.add_column('bar', sa.Column('locale', sa.String(length=5), nullable=False, server_default='en'))
    op.create_index('ix_user_phone', 'user', ['phone'], unique=True)
    _sqlite_foreign_keys(False)
    with op.batch_alter_table('tab_line') as batch_op:
        batch_op.create_foreign_key(op.f('fk_tab_line_removed_by_id_user'), 'user', ['removed_by_id'], ['id'])
    # A cashier may be added with a phone number and no email.
    with op.batch_alter_table('user') as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=True)
    _sqlite_foreign_keys(True)


def downgrade():
    _sqlite_foreign_keys(False)  # before anything opens a transaction: inside one it is ignored
    # Staff added by phone alone keep their rows (their lines and payments point at them) under
    # an address that can never receive mail.
    op.execute("UPDATE \"user\" SET email = 'user-' || id || '@no-email.invalid' WHERE email IS NULL")
    with op.batch_alter_table('user') as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=False)
    with op.batch_alter_table('tab_line') as batch_op:
        batch_op.drop_constraint(op.f('fk_tab_line_removed_by_id_user'), type_='foreignkey')
    _sqlite_foreign_keys(True)
    op.drop_index('ix_user_phone', table_name='user')
    op.drop_column('bar', 'locale')
    op.drop_column('user', 'locale')
    op.drop_column('user', 'phone')
    op.drop_column('tab_line', 'removed_by_id')
    op.drop_column('tab_line', 'removed_at')
    op.drop_index('ix_tender_bar_id_created_at', table_name='tender')
    op.drop_index('ix_tender_tab_id', table_name='tender')
    op.drop_table('tender')
