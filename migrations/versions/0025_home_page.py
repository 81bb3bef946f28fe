"""the home page: follow-ups due counted per agent and per branch from an index, and the last
run of each periodic job

Revision ID: home_0025
Revises: a3b4c5d60024
Create Date: 2026-12-06 19:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

from app.core.types import UTCDateTime

# revision identifiers, used by Alembic.
revision = "home_0025"
down_revision = "a3b4c5d60024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_lead_agent_follow_up_status",
        "lead",
        ["assigned_agent_id", "next_follow_up_at", "status"],
    )
    op.create_index(
        "ix_lead_branch_follow_up_status", "lead", ["branch_id", "next_follow_up_at", "status"]
    )
    op.create_table(
        "periodic_run",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("periodic_run")
    op.drop_index("ix_lead_branch_follow_up_status", table_name="lead")
    op.drop_index("ix_lead_agent_follow_up_status", table_name="lead")
