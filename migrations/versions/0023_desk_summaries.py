"""billing and forex summaries: open invoices counted per due day and month by the client's
branch and relationship manager with what is still due, and executed exchanges per UTC day and
month by the same people and currency pair with the amounts sold and bought; filled from the
rows already there

Revision ID: f2a3b4c50023
Revises: e1f2a3b40022
Create Date: 2026-12-06 04:15:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f2a3b4c50023"
down_revision = "e1f2a3b40022"
branch_labels = None
depends_on = None

TABLES = {
    "summary_invoice": (sa.Column("due_cents", sa.BigInteger(), nullable=False),),
    "summary_exchange": (
        sa.Column("sell_currency", sa.String(length=3), nullable=False),
        sa.Column("buy_currency", sa.String(length=3), nullable=False),
        sa.Column("sold_cents", sa.BigInteger(), nullable=False),
        sa.Column("bought_cents", sa.BigInteger(), nullable=False),
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
            sa.Column("n", sa.Integer(), nullable=False),
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
        day = "(timezone('UTC', x.executed_at))::date"
        month = "(date_trunc('month', day))::date"
        true = "true"

        def cents(column):
            return f"CAST({column} * 100 AS BIGINT)"
    else:
        day = "date(x.executed_at)"
        month = "date(day, 'start of month')"
        true = "1"

        def cents(column):
            return f"CAST(round({column} * 100) AS BIGINT)"

    people = "c.branch_id, COALESCE(c.relationship_manager_id, 0)"
    op.execute(
        "INSERT INTO summary_invoice (grain, day, branch_id, rm_id, n, due_cents, compacted) "
        f"SELECT 'd', i.due_date, {people}, count(*), SUM({cents('i.total - i.amount_paid')}), "
        f"{true} FROM invoice i JOIN client c ON c.id = i.client_id "
        "WHERE i.status IN ('issued', 'partially_paid', 'overdue') "
        f"GROUP BY i.due_date, {people}"
    )
    op.execute(
        "INSERT INTO summary_exchange (grain, day, branch_id, rm_id, sell_currency, "
        "buy_currency, n, sold_cents, bought_cents, compacted) "
        f"SELECT 'd', {day}, {people}, x.sell_currency, x.buy_currency, count(*), "
        f"SUM({cents('x.sell_amount')}), SUM({cents('x.buy_amount')}), {true} "
        "FROM fx_exchange x JOIN client c ON c.id = x.client_id "
        "WHERE x.status = 'executed' AND x.executed_at IS NOT NULL "
        f"GROUP BY {day}, {people}, x.sell_currency, x.buy_currency"
    )
    measures = {
        "summary_invoice": ("", "n, due_cents"),
        "summary_exchange": (", sell_currency, buy_currency", "n, sold_cents, bought_cents"),
    }
    for name, (dims, sums) in measures.items():
        group = f"branch_id, rm_id{dims}"
        summed = ", ".join(f"SUM({m})" for m in sums.split(", "))
        op.execute(
            f"INSERT INTO {name} (grain, day, {group}, {sums}, compacted) "
            f"SELECT 'm', {month}, {group}, {summed}, {true} FROM {name} "
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
