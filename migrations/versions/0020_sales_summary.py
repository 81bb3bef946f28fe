"""sales summary: leads counted per UTC day and month by branch, agent, source and status,
appended in the transaction of each change and folded by the compact-summaries job; filled
from the leads already there

Revision ID: c9d0e1f20020
Revises: b8c9d0e10019
Create Date: 2026-12-05 21:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c9d0e1f20020"
down_revision = "b8c9d0e10019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "summary_lead",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("n_new", sa.Integer(), nullable=False),
        sa.Column("n_contacted", sa.Integer(), nullable=False),
        sa.Column("n_qualified", sa.Integer(), nullable=False),
        sa.Column("n_converted", sa.Integer(), nullable=False),
        sa.Column("n_lost", sa.Integer(), nullable=False),
        sa.Column("compacted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summary_lead")),
    )
    with op.batch_alter_table("summary_lead", schema=None) as batch_op:
        batch_op.create_index("ix_summary_lead_grain_day", ["grain", "day"], unique=False)
        batch_op.create_index(
            "ix_summary_lead_branch_grain_day", ["branch_id", "grain", "day"], unique=False
        )
        batch_op.create_index(
            "ix_summary_lead_agent_grain_day", ["agent_id", "grain", "day"], unique=False
        )
        batch_op.create_index(
            "ix_summary_lead_pending",
            ["compacted"],
            unique=False,
            postgresql_where=sa.text("NOT compacted"),
            sqlite_where=sa.text("compacted = 0"),
        )
    _fill_from_leads()


def _fill_from_leads():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        day = "(timezone('UTC', created_at))::date"
        month = "(date_trunc('month', day))::date"
        true = "true"
    else:
        day = "date(created_at)"
        month = "date(day, 'start of month')"
        true = "1"
    counts = ", ".join(
        f"SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END)"
        for s in ("new", "contacted", "qualified", "converted", "lost")
    )
    columns = (
        "grain, day, branch_id, agent_id, source, "
        "n_new, n_contacted, n_qualified, n_converted, n_lost, compacted"
    )
    op.execute(
        f"INSERT INTO summary_lead ({columns}) SELECT 'd', {day}, branch_id, "
        f"COALESCE(assigned_agent_id, 0), source, {counts}, {true} FROM lead "
        f"GROUP BY {day}, branch_id, COALESCE(assigned_agent_id, 0), source"
    )
    op.execute(
        f"INSERT INTO summary_lead ({columns}) SELECT 'm', {month}, branch_id, agent_id, source, "
        f"SUM(n_new), SUM(n_contacted), SUM(n_qualified), SUM(n_converted), SUM(n_lost), {true} "
        f"FROM summary_lead WHERE grain = 'd' GROUP BY {month}, branch_id, agent_id, source"
    )


def downgrade():
    with op.batch_alter_table("summary_lead", schema=None) as batch_op:
        batch_op.drop_index("ix_summary_lead_pending")
        batch_op.drop_index("ix_summary_lead_agent_grain_day")
        batch_op.drop_index("ix_summary_lead_branch_grain_day")
        batch_op.drop_index("ix_summary_lead_grain_day")
    op.drop_table("summary_lead")
