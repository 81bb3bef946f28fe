"""the pipeline boards: indexes giving each status or stage column its most recently changed
rows, for everyone, within a branch and per agent or BDM

Revision ID: boards_0026
Revises: home_0025
Create Date: 2026-12-06 19:50:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "boards_0026"
down_revision = "home_0025"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_lead_board", "lead", ["status", "updated_at", "id"]),
    ("ix_lead_branch_board", "lead", ["branch_id", "status", "updated_at", "id"]),
    ("ix_lead_agent_board", "lead", ["assigned_agent_id", "status", "updated_at", "id"]),
    (
        "ix_loan_application_branch_board",
        "loan_application",
        ["branch_id", "stage", "stage_changed_at", "id"],
    ),
    (
        "ix_loan_application_bdm_board",
        "loan_application",
        ["bdm_id", "stage", "stage_changed_at", "id"],
    ),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
