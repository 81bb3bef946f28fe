"""lead imports keep the rows their check prepared (compressed), so the import re-checks only
their duplicates instead of every field rule of every row again

Revision ID: a3b4c5d60024
Revises: f2a3b4c50023
Create Date: 2026-12-06 14:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a3b4c5d60024"
down_revision = "f2a3b4c50023"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lead_import") as batch:
        batch.add_column(sa.Column("checked_rows", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("lead_import") as batch:
        batch.drop_column("checked_rows")
