"""indexes for a year of payments (benchmark 3, data at scale); each tab's outstanding at close

Revision ID: 0006_scale_indexes
Revises: 0005
Create Date: 2026-11-23 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_scale_indexes'
down_revision = '0005'
branch_labels = None
depends_on = None

# Partial index predicates, word for word as the queries they serve compile (see
# app/models/mpesa.py and app/models/tabs.py): PostgreSQL proves from the text that it may use them.
FLAGGED = {'postgresql': 'flagged IS true', 'sqlite': 'flagged IS 1'}
MAY_BREAK = {
    dialect: f"{flagged} OR (status = 'paid' AND receipt IS NULL) OR status IN ('created', 'sent', 'unknown')"
    for dialect, flagged in FLAGGED.items()
}
MAY_OWE = "status <> 'open' AND (outstanding_at_close IS NULL OR outstanding_at_close > 0)"

# Tabs closed before this revision: their balance now (lines minus paid payments). A closed tab's
# balance never rises, so this bounds what it owes from now on, as the value set at closing does.
BACKFILL = """
UPDATE tab SET outstanding_at_close =
    (SELECT COALESCE(SUM(tab_line.quantity * tab_line.unit_price), 0) FROM tab_line
     WHERE tab_line.tab_id = tab.id)
  - (SELECT COALESCE(SUM(payment.amount), 0) FROM payment
     WHERE payment.tab_id = tab.id AND payment.status = 'paid')
WHERE status <> 'open'
"""


def upgrade():
    op.add_column('tab', sa.Column('outstanding_at_close', sa.Integer(), nullable=True))
    op.execute(BACKFILL)
    op.create_index('ix_tab_bar_id_may_owe_closed_at', 'tab', ['bar_id', 'closed_at', 'id'], unique=False,
                    postgresql_where=sa.text(MAY_OWE), sqlite_where=sa.text(MAY_OWE))

    # Callbacks write to payment all the time: on PostgreSQL its indexes are built CONCURRENTLY
    # (no lock on writes; seconds for a year of payments), which cannot run inside a transaction.
    with op.get_context().autocommit_block():
        op.create_index('ix_payment_bar_id_phone_created_at', 'payment', ['bar_id', 'phone', 'created_at', 'id'],
                        unique=False, postgresql_concurrently=True)
        op.create_index('ix_payment_bar_id_flagged_created_at', 'payment', ['bar_id', 'created_at', 'id'],
                        unique=False, postgresql_concurrently=True,
                        postgresql_where=sa.text(FLAGGED['postgresql']), sqlite_where=sa.text(FLAGGED['sqlite']))
        op.create_index('ix_payment_bar_id_may_break_created_at', 'payment', ['bar_id', 'created_at', 'id'],
                        unique=False, postgresql_concurrently=True,
                        postgresql_where=sa.text(MAY_BREAK['postgresql']), sqlite_where=sa.text(MAY_BREAK['sqlite']))


def downgrade():
    op.drop_index('ix_payment_bar_id_may_break_created_at', table_name='payment')
    op.drop_index('ix_payment_bar_id_flagged_created_at', table_name='payment')
    op.drop_index('ix_payment_bar_id_phone_created_at', table_name='payment')
    op.drop_index('ix_tab_bar_id_may_owe_closed_at', table_name='tab')
    # Not batch mode: on SQLite that copies the table and drops the old one, which rows in
    # tab_line and payment forbid; SQLite (3.35+) and PostgreSQL both drop a column in place.
    op.drop_column('tab', 'outstanding_at_close')
