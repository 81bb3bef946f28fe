"""payment credit review: how a parked credit was resolved (applied to an invoice or loan, or
refunded at the provider), by whom and when

Revision ID: payments_0031
Revises: prices_0030
Create Date: 2026-12-07 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.core.types  # noqa: F401  (custom column types used by autogenerate)

# revision identifiers, used by Alembic.
revision = "payments_0031"
down_revision = "prices_0030"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payment_credit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("resolution_note", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("applied_payment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("applied_repayment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_at", app.core.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_payment_credit_applied_payment_id_billing_payment",
            "billing_payment",
            ["applied_payment_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "fk_payment_credit_applied_repayment_id_loan_repayment",
            "loan_repayment",
            ["applied_repayment_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "fk_payment_credit_resolved_by_id_ab_user", "ab_user", ["resolved_by_id"], ["id"]
        )
        batch_op.create_check_constraint(
            "ck_payment_credit_resolution",
            "resolution IS NULL OR resolution IN ('applied', 'refunded')",
        )
        batch_op.create_index("ix_payment_credit_status", ["status", "created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("payment_credit", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_credit_status")
        batch_op.drop_constraint("ck_payment_credit_resolution", type_="check")
        batch_op.drop_constraint("fk_payment_credit_resolved_by_id_ab_user", type_="foreignkey")
        batch_op.drop_constraint(
            "fk_payment_credit_applied_repayment_id_loan_repayment", type_="foreignkey"
        )
        batch_op.drop_constraint(
            "fk_payment_credit_applied_payment_id_billing_payment", type_="foreignkey"
        )
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("resolved_by_id")
        batch_op.drop_column("applied_repayment_id")
        batch_op.drop_column("applied_payment_id")
        batch_op.drop_column("resolution_note")
        batch_op.drop_column("resolution")
