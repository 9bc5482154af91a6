"""reversals: money given back on a paid payment, held once per payment

Revision ID: 0016_reversals
Revises: 0015_receipts
Create Date: 2026-12-07 10:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016_reversals"
down_revision = "0015_receipts"
branch_labels = None
depends_on = None

HOLDS_SQL = "state IN ('requested', 'reversed', 'no_answer')"  # app/models/reversals.py


def upgrade():
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reversed_amount", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "reversal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bar_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("tab_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("receipt", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("mpesa_desc", sa.String(length=255), nullable=True),
        sa.Column("reversal_receipt", sa.String(length=20), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["bar_id"], ["bar.id"], name=op.f("fk_reversal_bar_id_bar")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payment.id"], name=op.f("fk_reversal_payment_id_payment")
        ),
        sa.ForeignKeyConstraint(["tab_id"], ["tab.id"], name=op.f("fk_reversal_tab_id_tab")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["initiator_request.id"],
            name=op.f("fk_reversal_request_id_initiator_request"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"], name=op.f("fk_reversal_requested_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reversal")),
        sa.UniqueConstraint("request_id", name=op.f("uq_reversal_request_id")),
    )
    op.create_index(
        "uq_reversal_payment_holds",
        "reversal",
        ["payment_id"],
        unique=True,
        sqlite_where=sa.text(HOLDS_SQL),
        postgresql_where=sa.text(HOLDS_SQL),
    )
    op.create_index("ix_reversal_bar_id_settled_at", "reversal", ["bar_id", "settled_at"])
    op.create_index("ix_reversal_tab_id", "reversal", ["tab_id"])


def downgrade():
    op.drop_index("ix_reversal_tab_id", table_name="reversal")
    op.drop_index("ix_reversal_bar_id_settled_at", table_name="reversal")
    op.drop_index("uq_reversal_payment_holds", table_name="reversal")
    op.drop_table("reversal")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_column("reversed_amount")
