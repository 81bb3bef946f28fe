"""lists: an index for every order the lead, client and loan application lists offer (with the
key as tie-breaker), the default order within a branch's or an agent's rows, and pg_trgm
indexes for name, e-mail and phone searches on leads and clients (PostgreSQL only)

Revision ID: e5f6a7b80016
Revises: d4e5f6a70015
Create Date: 2026-11-21 16:30:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "e5f6a7b80016"
down_revision = "d4e5f6a70015"
branch_labels = None
depends_on = None

# (index, table, columns); each replaces nothing unless named in REPLACED.
ORDER_INDEXES = [
    ("ix_lead_first_name_id", "lead", ["first_name", "id"]),
    ("ix_lead_last_name_id", "lead", ["last_name", "id"]),
    ("ix_lead_status_id", "lead", ["status", "id"]),
    ("ix_lead_score_id", "lead", ["score", "id"]),
    ("ix_lead_follow_up_id", "lead", ["next_follow_up_at", "id"]),
    ("ix_lead_branch_id_id", "lead", ["branch_id", "id"]),
    ("ix_lead_agent_id_id", "lead", ["assigned_agent_id", "id"]),
    ("ix_client_name_id", "client", ["name", "id"]),
    ("ix_client_segment_id", "client", ["segment", "id"]),
    ("ix_client_status_id", "client", ["status", "id"]),
    ("ix_client_kyc_status_id", "client", ["kyc_status", "id"]),
    ("ix_client_branch_id_id", "client", ["branch_id", "id"]),
    ("ix_client_rm_id", "client", ["relationship_manager_id", "id"]),
    ("ix_loan_application_amount_id", "loan_application", ["amount", "id"]),
    ("ix_loan_application_stage_changed_id", "loan_application", ["stage_changed_at", "id"]),
]
# Single-column indexes the (column, id) ones above make redundant.
REPLACED = [
    ("ix_lead_score", "lead", ["score"]),
    ("ix_client_segment", "client", ["segment"]),
]
TRIGRAM_INDEXES = [
    ("lead", "first_name"),
    ("lead", "last_name"),
    ("lead", "email"),
    ("lead", "phone"),
    ("lead", "company"),
    ("client", "name"),
    ("client", "email"),
    ("client", "phone"),
]


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    for name, table, columns in ORDER_INDEXES:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in REPLACED:
        op.drop_index(name, table_name=table)
    if _is_postgresql():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column in TRIGRAM_INDEXES:
            op.create_index(
                f"ix_{table}_{column}_trgm",
                table,
                [column],
                unique=False,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade():
    if _is_postgresql():
        for table, column in reversed(TRIGRAM_INDEXES):
            op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in reversed(ORDER_INDEXES):
        op.drop_index(name, table_name=table)
