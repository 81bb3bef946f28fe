"""page indexes: every order the lead, client and loan application lists offer within a
branch's rows (key as tie-breaker), and an agent's leads by status, so that a deep page or a
sorted page of a branch manager or agent reads one index; they replace the (scope, status)
indexes they extend

Revision ID: b8c9d0e10019
Revises: f6a7b8c90017
Create Date: 2026-11-21 17:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b8c9d0e10019"
down_revision = "f6a7b8c90017"
branch_labels = None
depends_on = None

# (index, table, columns)
PAGE_INDEXES = [
    ("ix_lead_agent_status_id", "lead", ["assigned_agent_id", "status", "id"]),
    (
        "ix_lead_dashboard",
        "lead",
        ["branch_id", "created_at", "status", "source", "assigned_agent_id"],
    ),
    ("ix_lead_branch_first_name_id", "lead", ["branch_id", "first_name", "id"]),
    ("ix_lead_branch_last_name_id", "lead", ["branch_id", "last_name", "id"]),
    ("ix_lead_branch_status_id", "lead", ["branch_id", "status", "id"]),
    ("ix_lead_branch_score_id", "lead", ["branch_id", "score", "id"]),
    ("ix_lead_branch_follow_up_id", "lead", ["branch_id", "next_follow_up_at", "id"]),
    ("ix_client_branch_name_id", "client", ["branch_id", "name", "id"]),
    ("ix_client_branch_segment_id", "client", ["branch_id", "segment", "id"]),
    ("ix_client_branch_status_id", "client", ["branch_id", "status", "id"]),
    ("ix_client_branch_kyc_status_id", "client", ["branch_id", "kyc_status", "id"]),
    ("ix_loan_application_branch_id_id", "loan_application", ["branch_id", "id"]),
    (
        "ix_loan_application_branch_reference_id",
        "loan_application",
        ["branch_id", "reference", "id"],
    ),
    ("ix_loan_application_branch_stage_id", "loan_application", ["branch_id", "stage", "id"]),
    ("ix_loan_application_branch_amount_id", "loan_application", ["branch_id", "amount", "id"]),
    (
        "ix_loan_application_branch_stage_changed_id",
        "loan_application",
        ["branch_id", "stage_changed_at", "id"],
    ),
]
# Indexes that one of the above extends (same leading columns).
REPLACED = [
    ("ix_lead_agent_status", "lead", ["assigned_agent_id", "status"]),
    ("ix_lead_branch_status", "lead", ["branch_id", "status"]),
    ("ix_client_branch_status", "client", ["branch_id", "status"]),
    ("ix_loan_application_branch", "loan_application", ["branch_id", "stage"]),
]


def upgrade():
    for name, table, columns in PAGE_INDEXES:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in REPLACED:
        op.drop_index(name, table_name=table)


def downgrade():
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in reversed(PAGE_INDEXES):
        op.drop_index(name, table_name=table)
