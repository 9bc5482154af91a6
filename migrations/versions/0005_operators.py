"""operators (people without a bar) and each bar's token-fetch health

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:21:27.833254

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Only operators have no bar, and every operator has none (not detected by autogenerate).
OPERATOR_CHECK = "(role = 'operator') = (bar_id IS NULL)"


def upgrade():
    with op.batch_alter_table('bar', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('token_failed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('token_failure_reason', sa.String(length=24), nullable=True))

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('bar_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_check_constraint(op.f('ck_user_operator_has_no_bar'), OPERATOR_CHECK)


def downgrade():
    operators = op.get_bind().execute(
        sa.text("SELECT count(*) FROM \"user\" WHERE role = 'operator'")
    ).scalar()
    if operators:
        raise RuntimeError(
            f"{operators} operator account(s) exist and have no bar, which revision 0004 cannot "
            "hold. Remove them (and their audit entries' user_id) before downgrading."
        )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_operator_has_no_bar'), type_='check')
        batch_op.alter_column('bar_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('bar', schema=None) as batch_op:
        batch_op.drop_column('token_failure_reason')
        batch_op.drop_column('token_failed_at')
        batch_op.drop_column('token_failures')
