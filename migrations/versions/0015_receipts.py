"""receipts: the bar's address and KRA PIN, and revocable receipt links

Revision ID: 0015_receipts
Revises: 0014_c2b_validation
Create Date: 2026-12-07 06:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0015_receipts"
down_revision = "0014_c2b_validation"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("bar", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("kra_pin", sa.String(length=11), nullable=True))
    op.create_table(
        "receipt_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bar_id", sa.Integer(), nullable=False),
        sa.Column("tab_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["bar_id"], ["bar.id"], name=op.f("fk_receipt_link_bar_id_bar")),
        sa.ForeignKeyConstraint(["tab_id"], ["tab.id"], name=op.f("fk_receipt_link_tab_id_tab")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_receipt_link_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["user.id"], name=op.f("fk_receipt_link_revoked_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_receipt_link_token_hash")),
    )
    op.create_index("ix_receipt_link_tab_id", "receipt_link", ["tab_id"], unique=False)


def downgrade():
    op.drop_index("ix_receipt_link_tab_id", table_name="receipt_link")
    op.drop_table("receipt_link")
    with op.batch_alter_table("bar", schema=None) as batch_op:
        batch_op.drop_column("kra_pin")
        batch_op.drop_column("address")
