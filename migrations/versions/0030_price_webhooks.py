"""price webhooks: market-data events pushed by a provider (prices and FX rates), kept once
per event id

Revision ID: prices_0030
Revises: campaigns_0029
Create Date: 2026-12-07 07:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.core.types  # noqa: F401  (custom column types used by autogenerate)

# revision identifiers, used by Alembic.
revision = "prices_0030"
down_revision = "campaigns_0029"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "market_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column("as_of", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("received_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('price', 'fx_rate')", name="ck_market_event_kind"),
        sa.CheckConstraint("outcome IN ('applied', 'ignored')", name="ck_market_event_outcome"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("market_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_market_event_subject_as_of", ["kind", "subject", "as_of"], unique=False
        )


def downgrade():
    with op.batch_alter_table("market_event", schema=None) as batch_op:
        batch_op.drop_index("ix_market_event_subject_as_of")

    op.drop_table("market_event")
