"""offers: rule-based offers (segment, risk profile, activity, festival calendar) and one
delivery row per offer and client

Revision ID: d3e4f5a60013
Revises: 9e3a1b4c0009
Create Date: 2026-11-21 10:51:52.351609

"""

import sqlalchemy as sa
from alembic import op

import app.core.crypto  # noqa: F401  (EncryptedText)
import app.core.types  # noqa: F401  (custom column types used by autogenerate)

# revision identifiers, used by Alembic.
revision = "d3e4f5a60013"
down_revision = "9e3a1b4c0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("segments", sa.String(length=100), nullable=True),
        sa.Column("risk_profiles", sa.String(length=100), nullable=True),
        sa.Column("activity", sa.String(length=10), nullable=False),
        sa.Column("activity_days", sa.Integer(), nullable=True),
        sa.Column("occasion", sa.String(length=100), nullable=True),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(activity = 'any' AND activity_days IS NULL) OR (activity <> 'any' AND activity_days >= 1)",
            name="ck_offer_activity_days",
        ),
        sa.CheckConstraint("activity IN ('any', 'active', 'inactive')", name="ck_offer_activity"),
        sa.CheckConstraint("channel IN ('email', 'sms')", name="ck_offer_channel"),
        sa.CheckConstraint("lead_days >= 0", name="ck_offer_lead_days"),
        sa.CheckConstraint(
            "starts_on IS NULL OR ends_on IS NULL OR ends_on >= starts_on", name="ck_offer_window"
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["ab_user.id"], name="fk_offer_created_by_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "offer_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], name="fk_offer_delivery_client_id"),
        sa.ForeignKeyConstraint(
            ["notification_id"], ["notification.id"], name="fk_offer_delivery_notification_id"
        ),
        sa.ForeignKeyConstraint(["offer_id"], ["offer.id"], name="fk_offer_delivery_offer_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "client_id", name="uq_offer_delivery_offer_client"),
    )
    with op.batch_alter_table("offer_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_offer_delivery_client", ["client_id"], unique=False)


def downgrade():
    with op.batch_alter_table("offer_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_delivery_client")

    op.drop_table("offer_delivery")
    op.drop_table("offer")
