"""jobs: the unpaid instalments by due date (the arrears job and the loan reminders read only
those, not the paid history)

Revision ID: f6a7b8c90017
Revises: a7b8c9d00018
Create Date: 2026-11-21 15:45:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f6a7b8c90017"
down_revision = "a7b8c9d00018"
branch_labels = None
depends_on = None

UNPAID = sa.text("status <> 'paid'")


def upgrade():
    op.create_index(
        "ix_loan_instalment_unpaid_due",
        "loan_instalment",
        ["due_date", "application_id"],
        unique=False,
        postgresql_where=UNPAID,
        sqlite_where=UNPAID,
    )


def downgrade():
    op.drop_index("ix_loan_instalment_unpaid_due", table_name="loan_instalment")
