"""lending summaries: applications counted per UTC day and month by branch, BDM, broker, stage
and arrears bucket, and instalments per due day by their application's branch, BDM and broker
and how they were paid, with amounts in cents; filled from the rows already there

Revision ID: d0e1f2a30021
Revises: c9d0e1f20020
Create Date: 2026-12-06 03:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d0e1f2a30021"
down_revision = "c9d0e1f20020"
branch_labels = None
depends_on = None

TABLES = {
    "summary_application": ("stage", "arrears_bucket"),
    "summary_instalment": ("timeliness",),
}
LENGTHS = {"stage": 20, "arrears_bucket": 10, "timeliness": 10}


def upgrade():
    for name, extra in TABLES.items():
        op.create_table(
            name,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("grain", sa.String(length=1), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("branch_id", sa.Integer(), nullable=False),
            sa.Column("bdm_id", sa.Integer(), nullable=False),
            sa.Column("broker_id", sa.Integer(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("amount_cents", sa.BigInteger(), nullable=False),
            sa.Column("compacted", sa.Boolean(), nullable=False),
            *(sa.Column(c, sa.String(length=LENGTHS[c]), nullable=False) for c in extra),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        )
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.create_index(f"ix_{name}_grain_day", ["grain", "day"], unique=False)
            for who in ("branch", "bdm", "broker"):
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
        day = "(timezone('UTC', a.created_at))::date"
        month = "(date_trunc('month', day))::date"
        true = "true"

        def cents(column):
            return f"CAST({column} * 100 AS BIGINT)"
    else:
        day = "date(a.created_at)"
        month = "date(day, 'start of month')"
        true = "1"

        def cents(column):
            return f"CAST(round({column} * 100) AS BIGINT)"

    keys = "grain, day, branch_id, bdm_id, broker_id"
    op.execute(
        f"INSERT INTO summary_application ({keys}, stage, arrears_bucket, n, amount_cents, "
        f"compacted) SELECT 'd', {day}, a.branch_id, a.bdm_id, COALESCE(a.broker_id, 0), "
        f"a.stage, a.arrears_bucket, count(*), SUM({cents('a.amount')}), {true} "
        f"FROM loan_application a GROUP BY {day}, a.branch_id, a.bdm_id, "
        "COALESCE(a.broker_id, 0), a.stage, a.arrears_bucket"
    )
    timeliness = (
        "CASE WHEN i.status = 'paid' AND i.paid_on <= i.due_date THEN 'on_time' "
        "WHEN i.status = 'paid' THEN 'paid_late' ELSE 'unpaid' END"
    )
    op.execute(
        f"INSERT INTO summary_instalment ({keys}, timeliness, n, amount_cents, compacted) "
        f"SELECT 'd', i.due_date, a.branch_id, a.bdm_id, COALESCE(a.broker_id, 0), "
        f"{timeliness}, count(*), SUM({cents('i.total')}), {true} "
        "FROM loan_instalment i JOIN loan_application a ON a.id = i.application_id "
        f"GROUP BY i.due_date, a.branch_id, a.bdm_id, COALESCE(a.broker_id, 0), {timeliness}"
    )
    for name, extra in TABLES.items():
        dims = f"branch_id, bdm_id, broker_id, {', '.join(extra)}"
        op.execute(
            f"INSERT INTO {name} (grain, day, {dims}, n, amount_cents, compacted) "
            f"SELECT 'm', {month}, {dims}, SUM(n), SUM(amount_cents), {true} FROM {name} "
            f"WHERE grain = 'd' GROUP BY {month}, {dims}"
        )


def downgrade():
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{name}_pending")
            for who in ("broker", "bdm", "branch"):
                batch_op.drop_index(f"ix_{name}_{who}_grain_day")
            batch_op.drop_index(f"ix_{name}_grain_day")
        op.drop_table(name)
