"""server-side session ends: each user's session version, bumped by signing out, deactivation
and a password change (cookies and bearer tokens of an earlier version are refused)

Revision ID: sessions_0032
Revises: payments_0031
Create Date: 2026-12-07 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.core.types  # noqa: F401  (custom column types used by autogenerate)

# revision identifiers, used by Alembic.
revision = "sessions_0032"
down_revision = "payments_0031"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_session",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade():
    op.drop_table("user_session")
