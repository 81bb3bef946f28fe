"""one submission per money form: the forms already acted on (a double click, a resubmitted
page or a retried POST of a repayment or payment does its work once)

Revision ID: a7b8c9d00018
Revises: e5f6a7b80016
Create Date: 2026-11-21 16:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.core.types  # noqa: F401  (custom column types used by autogenerate)

# revision identifiers, used by Alembic.
revision = "a7b8c9d00018"
down_revision = "e5f6a7b80016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "form_submission",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_form_submission")),
    )


def downgrade():
    op.drop_table("form_submission")
