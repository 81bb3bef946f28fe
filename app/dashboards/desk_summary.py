"""The billing and forex summaries: open invoices by due day, executed exchanges by day.

``summary_invoice`` counts the invoices still open (issued, part paid or overdue) by due date
and their client's branch and relationship manager (0: none), with what is still due (cents): an
invoice paid in full or voided leaves it. ``summary_exchange`` counts executed exchanges by the
UTC day of execution, the client's branch and manager and the currency pair, with the amounts
sold and bought (cents, each in its own currency). Both are kept the way
``app.dashboards.summary`` describes; a client handed to another manager takes them along.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    String,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.billing.models import OPEN_INVOICE_STATUSES, Invoice
from app.clients.models import Client
from app.dashboards.summary import (
    Summary,
    among,
    cents,
    people_clauses,
    period_clause,
    register,
    summary_indexes,
    utc_day,
)
from app.extensions import db
from app.forex.models import FxExchange
from app.security.scoping import scoped


def _indexes(name: str) -> tuple:
    return summary_indexes(name, "branch_id", "rm_id")


def _scope(model) -> dict:
    """A client's scope rules, on the summary's branch and relationship manager."""
    return {
        "branch": lambda actor: model().branch_id == actor.branch_id,
        "own": lambda actor: model().rm_id == actor.user_id,
    }


class _Keyed:
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    branch_id: Mapped[int] = mapped_column(Integer)
    rm_id: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=0)
    compacted: Mapped[bool] = mapped_column(Boolean, default=False)


@scoped
class InvoiceSummary(_Keyed, Model):
    """Open invoices due on a day (or in a month) by the client's branch and manager: how many
    and what is still due, in cents."""

    __tablename__ = "summary_invoice"
    __table_args__ = _indexes("summary_invoice")

    due_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    __scope__ = _scope(lambda: InvoiceSummary)


@scoped
class ExchangeSummary(_Keyed, Model):
    """Exchanges executed on a UTC day (or in a month) by the client's branch and manager and
    the currency pair: how many, and the amounts sold and bought in cents."""

    __tablename__ = "summary_exchange"
    __table_args__ = _indexes("summary_exchange")

    sell_currency: Mapped[str] = mapped_column(String(3))
    buy_currency: Mapped[str] = mapped_column(String(3))
    sold_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    bought_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    __scope__ = _scope(lambda: ExchangeSummary)


def _invoice_rows(dialect: str):
    i, c = Invoice.__table__.c, Client.__table__.c
    groups = (i.due_date, c.branch_id, func.coalesce(c.relationship_manager_id, 0))
    return (
        select(*groups, func.count(), func.sum(cents(i.total - i.amount_paid, dialect)))
        .select_from(Invoice.__table__.join(Client.__table__))
        .where(i.status.in_(OPEN_INVOICE_STATUSES))
        .group_by(*groups)
    )


def _exchange_rows(dialect: str):
    x, c = FxExchange.__table__.c, Client.__table__.c
    groups = (
        utc_day(x.executed_at, dialect),
        c.branch_id,
        func.coalesce(c.relationship_manager_id, 0),
        x.sell_currency,
        x.buy_currency,
    )
    return (
        select(
            *groups,
            func.count(),
            func.sum(cents(x.sell_amount, dialect)),
            func.sum(cents(x.buy_amount, dialect)),
        )
        .select_from(FxExchange.__table__.join(Client.__table__))
        .where(x.status == "executed", x.executed_at.is_not(None))
        .group_by(*groups)
    )


def _of_clients(table):
    return lambda cls, ids: among(table.c.client_id if cls is Client else table.c.id, ids)


INVOICES = register(
    Summary(
        model=InvoiceSummary,
        dims=("branch_id", "rm_id"),
        measures=("n", "due_cents"),
        watched={
            Invoice: ("status", "due_date", "total", "amount_paid", "client_id"),
            Client: ("branch_id", "relationship_manager_id"),
        },
        rows=_invoice_rows,
        affected=_of_clients(Invoice.__table__),
        lock=7_301_007,
    )
)

EXCHANGES = register(
    Summary(
        model=ExchangeSummary,
        dims=("branch_id", "rm_id", "sell_currency", "buy_currency"),
        measures=("n", "sold_cents", "bought_cents"),
        watched={
            FxExchange: (
                "status",
                "executed_at",
                "sell_currency",
                "buy_currency",
                "sell_amount",
                "buy_amount",
                "client_id",
            ),
            Client: ("branch_id", "relationship_manager_id"),
        },
        rows=_exchange_rows,
        affected=_of_clients(FxExchange.__table__),
        lock=7_301_008,
    )
)


# ---- reading ----------------------------------------------------------------------------------


def _people(model, branch, agent) -> list:
    return people_clauses(model, branch, agent, "rm_id")


def _money(value) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(Decimal("0.01"))


def open_invoices_by_due_range(
    ranges: dict[str, tuple[date | None, date | None]], branch: int | None, agent: int | None
) -> dict[str, tuple[int, Decimal]]:
    """Open invoices (count, still due) per named range of due dates (both ends included,
    ``None`` open), in one statement over the summary, scoped."""
    s = InvoiceSummary
    parts = [
        select(literal(name), func.sum(s.n), func.sum(s.due_cents))
        .where(period_clause(s, first, last), *_people(s, branch, agent))
        .having(func.sum(s.n) != 0)
        for name, (first, last) in ranges.items()
    ]
    found = db.session.execute(union_all(*parts)) if parts else []
    return {name: (int(n), _money(due)) for name, n, due in found}


def exchanges_by_pair(
    date_from: date | None, date_to: date | None, branch: int | None, agent: int | None
) -> list[tuple[str, str, int, Decimal, Decimal]]:
    """Executed exchanges of the period per pair: (sell, buy, count, sold, bought), most
    exchanges first, scoped."""
    s = ExchangeSummary
    n = func.sum(s.n)
    found = db.session.execute(
        select(s.sell_currency, s.buy_currency, n, func.sum(s.sold_cents), func.sum(s.bought_cents))
        .where(period_clause(s, date_from, date_to), *_people(s, branch, agent))
        .group_by(s.sell_currency, s.buy_currency)
        .having(n != 0)
        .order_by(n.desc(), s.sell_currency, s.buy_currency)
    )
    return [
        (sell, buy, int(count), _money(sold), _money(bought))
        for sell, buy, count, sold, bought in found
    ]
