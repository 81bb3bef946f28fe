"""dashboards: indexes for the dashboards' filters (applications by creation time, exchanges by
status and execution time)

Revision ID: d4e5f6a70015
Revises: d4e5f6a70014
Create Date: 2026-11-21 13:16:19.345050

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "d4e5f6a70015"
down_revision = "d4e5f6a70014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_fx_exchange_status_executed", "fx_exchange", ["status", "executed_at"], unique=False
    )
    op.create_index("ix_loan_application_created", "loan_application", ["created_at"], unique=False)


def downgrade():
    op.drop_index("ix_loan_application_created", table_name="loan_application")
    op.drop_index("ix_fx_exchange_status_executed", table_name="fx_exchange")
