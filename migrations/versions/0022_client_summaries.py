"""client summaries: clients counted per UTC day and month of becoming clients by branch,
relationship manager, segment, KYC status and whether they hold anything, and the quantity held
per instrument by the same people; filled from the rows already there

Revision ID: e1f2a3b40022
Revises: d0e1f2a30021
Create Date: 2026-12-06 04:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e1f2a3b40022"
down_revision = "d0e1f2a30021"
branch_labels = None
depends_on = None

TABLES = {
    "summary_client": (
        sa.Column("kyc_status", sa.String(length=20), nullable=False),
        sa.Column("holder", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    ),
    "summary_position": (
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("quantity_micro", sa.BigInteger(), nullable=False),
    ),
}


def upgrade():
    for name, extra in TABLES.items():
        op.create_table(
            name,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("grain", sa.String(length=1), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("branch_id", sa.Integer(), nullable=False),
            sa.Column("rm_id", sa.Integer(), nullable=False),
            sa.Column("segment", sa.String(length=20), nullable=False),
            sa.Column("compacted", sa.Boolean(), nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        )
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.create_index(f"ix_{name}_grain_day", ["grain", "day"], unique=False)
            for who in ("branch", "rm"):
                batch_op.create_index(
                    f"ix_{name}_{who}_grain_day", [f"{who}_id", "grain", "day"], unique=False
                )
            batch_op.create_index(
                f"ix_{name}_pending",
                ["compacted"],
                unique=False,
                postgresql_where=sa.text("NOT compacted"),
                sqlite_where=sa.text("compacted = 0"),
            )
    _fill()


def _fill():
    if op.get_bind().dialect.name == "postgresql":
        day = "(timezone('UTC', c.created_at))::date"
        month = "(date_trunc('month', day))::date"
        true = "true"
        micro = "CAST(p.quantity * 1000000 AS BIGINT)"
    else:
        day = "date(c.created_at)"
        month = "date(day, 'start of month')"
        true = "1"
        micro = "CAST(round(p.quantity * 1000000) AS BIGINT)"
    people = "c.branch_id, COALESCE(c.relationship_manager_id, 0), COALESCE(c.segment, '')"
    holder = (
        "CASE WHEN EXISTS (SELECT 1 FROM position p WHERE p.client_id = c.id "
        "AND p.quantity > 0) THEN 1 ELSE 0 END"
    )
    keys = "grain, day, branch_id, rm_id, segment"
    op.execute(
        f"INSERT INTO summary_client ({keys}, kyc_status, holder, n, compacted) "
        f"SELECT 'd', {day}, {people}, c.kyc_status, {holder}, count(*), {true} FROM client c "
        f"GROUP BY {day}, {people}, c.kyc_status, {holder}"
    )
    op.execute(
        f"INSERT INTO summary_position ({keys}, instrument_id, quantity_micro, compacted) "
        f"SELECT 'd', {day}, {people}, p.instrument_id, SUM({micro}), {true} "
        "FROM position p JOIN client c ON c.id = p.client_id "
        f"GROUP BY {day}, {people}, p.instrument_id"
    )
    dims = {"summary_client": "kyc_status, holder", "summary_position": "instrument_id"}
    sums = {"summary_client": "SUM(n)", "summary_position": "SUM(quantity_micro)"}
    measure = {"summary_client": "n", "summary_position": "quantity_micro"}
    for name in TABLES:
        group = f"branch_id, rm_id, segment, {dims[name]}"
        op.execute(
            f"INSERT INTO {name} (grain, day, {group}, {measure[name]}, compacted) "
            f"SELECT 'm', {month}, {group}, {sums[name]}, {true} FROM {name} "
            f"WHERE grain = 'd' GROUP BY {month}, {group}"
        )


def downgrade():
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{name}_pending")
            for who in ("rm", "branch"):
                batch_op.drop_index(f"ix_{name}_{who}_grain_day")
            batch_op.drop_index(f"ix_{name}_grain_day")
        op.drop_table(name)
