"""The lending summaries: applications and instalments counted per day and month.

``summary_application`` counts applications by the UTC day they were created, branch, BDM,
broker (0: none), the stage they are at now and their arrears bucket, with the amount asked for
(cents). ``summary_instalment`` counts instalments by due day, their application's branch, BDM
and broker, and how they were paid (on time, late, not in full), with the amount due (cents):
moving an application to another branch or BDM moves its instalments' counts too. Both are
kept the way ``app.dashboards.summary`` describes; the arrears job's bulk updates included.

The lending dashboard reads every chart from them in one statement (``lending_figures``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask import g
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    String,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.dashboards.drilldown import timeliness_of
from app.dashboards.summary import (
    Summary,
    among,
    cents,
    period_clause,
    register,
    summary_indexes,
    utc_day,
    writes,
)
from app.extensions import db
from app.lending.models import Broker, LoanApplication, LoanInstalment
from app.security.scoping import current_actor, scoped


def _indexes(name: str) -> tuple:
    return summary_indexes(name, "branch_id", "bdm_id", "broker_id")


def _scope(model) -> dict:
    """An application's scope rules, on the summary's branch, BDM and broker (``model()``
    names the summary, which is not defined yet when its class body runs)."""
    return {
        "branch": lambda actor: model().branch_id == actor.branch_id,
        "bdm": lambda actor: model().bdm_id == actor.user_id,
        "broker": lambda actor: exists(
            select(Broker.id).where(Broker.id == model().broker_id, Broker.user_id == actor.user_id)
        ),
    }


class _Keyed:
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    branch_id: Mapped[int] = mapped_column(Integer)
    bdm_id: Mapped[int] = mapped_column(Integer)
    broker_id: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    compacted: Mapped[bool] = mapped_column(Boolean, default=False)


@scoped
class ApplicationSummary(_Keyed, Model):
    """Applications created on a UTC day (or in a month) by branch, BDM, broker, stage and
    arrears bucket: how many and the amount asked for, in cents."""

    __tablename__ = "summary_application"
    __table_args__ = _indexes("summary_application")

    stage: Mapped[str] = mapped_column(String(20))
    arrears_bucket: Mapped[str] = mapped_column(String(10))

    __scope__ = _scope(lambda: ApplicationSummary)


@scoped
class InstalmentSummary(_Keyed, Model):
    """Instalments due on a day (or in a month) by their application's branch, BDM and broker
    and how they were paid: how many and the amount due, in cents."""

    __tablename__ = "summary_instalment"
    __table_args__ = _indexes("summary_instalment")

    timeliness: Mapped[str] = mapped_column(String(10))

    __scope__ = _scope(lambda: InstalmentSummary)


def _application_rows(dialect: str):
    a = LoanApplication.__table__.c
    day = utc_day(a.created_at, dialect)
    broker = func.coalesce(a.broker_id, 0)
    groups = (day, a.branch_id, a.bdm_id, broker, a.stage, a.arrears_bucket)
    return select(*groups, func.count(), func.sum(cents(a.amount, dialect))).group_by(*groups)


def _instalment_rows(dialect: str):
    i, a = LoanInstalment.__table__.c, LoanApplication.__table__.c
    timeliness = timeliness_of(i).label("timeliness")
    broker = func.coalesce(a.broker_id, 0)
    return (
        select(
            i.due_date,
            a.branch_id,
            a.bdm_id,
            broker,
            timeliness,
            func.count(),
            func.sum(cents(i.total, dialect)),
        )
        .select_from(LoanInstalment.__table__.join(LoanApplication.__table__))
        .group_by(i.due_date, a.branch_id, a.bdm_id, broker, timeliness)
    )


def _instalments_of(cls, ids):
    i = LoanInstalment.__table__.c
    return among(i.application_id if cls is LoanApplication else i.id, ids)


APPLICATIONS = register(
    Summary(
        model=ApplicationSummary,
        dims=("branch_id", "bdm_id", "broker_id", "stage", "arrears_bucket"),
        measures=("n", "amount_cents"),
        watched={
            LoanApplication: (
                "created_at",
                "branch_id",
                "bdm_id",
                "broker_id",
                "stage",
                "arrears_bucket",
                "amount",
            )
        },
        rows=_application_rows,
        affected=lambda cls, ids: among(LoanApplication.__table__.c.id, ids),
        lock=7_301_003,
    )
)

INSTALMENTS = register(
    Summary(
        model=InstalmentSummary,
        dims=("branch_id", "bdm_id", "broker_id", "timeliness"),
        measures=("n", "amount_cents"),
        watched={
            LoanInstalment: ("due_date", "total", "status", "paid_on", "application_id"),
            LoanApplication: ("branch_id", "bdm_id", "broker_id"),
        },
        rows=_instalment_rows,
        affected=_instalments_of,
        lock=7_301_004,
    )
)


# ---- reading ----------------------------------------------------------------------------------


@dataclass
class LendingFigures:
    """Every number of the lending dashboard: (count, amount) per stage, per month
    (``YYYY-MM``), per BDM (with the name parts), per arrears bucket of settled loans, and per
    timeliness of the instalments due."""

    by_stage: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    by_month: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    by_bdm: list[tuple[int, str | None, str | None, str, int, Decimal]] = field(
        default_factory=list
    )
    arrears: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    timeliness: dict[str, tuple[int, Decimal]] = field(default_factory=dict)


def _people(model, branch, bdm, broker) -> list:
    where = []
    if branch is not None:
        where.append(model.branch_id == branch)
    if bdm is not None:
        where.append(model.bdm_id == bdm)
    if broker is not None:
        where.append(model.broker_id == broker)
    return where


def _money(value) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(Decimal("0.01"))


def lending_figures(
    date_from: date | None,
    date_to: date | None,
    due_from: date | None,
    due_to: date,
    branch: int | None = None,
    bdm: int | None = None,
    broker: int | None = None,
) -> LendingFigures:
    """The lending dashboard's numbers in one statement over the two summaries (through the
    session, so the reader's row scope applies): applications created from ``date_from`` to
    ``date_to`` by stage, month and BDM; settled loans by arrears bucket (today's, whatever the
    period); instalments due from ``due_from`` to ``due_to`` by how they were paid. The figures
    are kept for the rest of the request, until the next write."""
    memo_key = (
        date_from, date_to, due_from, due_to, branch, bdm, broker,
        writes(db.session()), current_actor(),
    )  # fmt: skip
    memo = g.setdefault("crm_lending_figures", {})
    if memo_key in memo:
        return memo[memo_key]
    s, i = ApplicationSummary, InstalmentSummary
    people = _people(s, branch, bdm, broker)
    period = [period_clause(s, date_from, date_to), *people]
    n, amount = func.sum(s.n), func.sum(s.amount_cents)
    none = null()
    parts = [
        select(literal("stage"), s.stage, none, n, amount, none, none, none)
        .where(*period)
        .group_by(s.stage)
        .having(n != 0),
        select(literal("month"), none, s.day, n, amount, none, none, none)
        .where(*period)
        .group_by(s.day)
        .having(n != 0),
        select(
            literal("bdm"),
            cast(s.bdm_id, String),
            none,
            n,
            amount,
            User.first_name,
            User.last_name,
            User.username,
        )
        .join(User, User.id == s.bdm_id)
        .where(*period)
        .group_by(s.bdm_id, User.first_name, User.last_name, User.username)
        .having(n != 0),
        select(literal("arrears"), s.arrears_bucket, none, n, amount, none, none, none)
        .where(s.grain == "m", s.stage == "settled", *people)
        .group_by(s.arrears_bucket)
        .having(n != 0),
        select(
            literal("due"),
            i.timeliness,
            none,
            func.sum(i.n),
            func.sum(i.amount_cents),
            none,
            none,
            none,
        )
        .where(period_clause(i, due_from, due_to), *_people(i, branch, bdm, broker))
        .group_by(i.timeliness)
        .having(func.sum(i.n) != 0),
    ]
    figures = LendingFigures()
    for kind, key, day, count, cents_, first, last, username in db.session.execute(
        union_all(*parts)
    ):
        value = (int(count or 0), _money(cents_))
        if kind == "stage":
            figures.by_stage[key] = value
        elif kind == "month":
            month = (day if isinstance(day, date) else date.fromisoformat(str(day))).strftime(
                "%Y-%m"
            )
            before = figures.by_month.get(month, (0, Decimal("0.00")))
            figures.by_month[month] = (before[0] + value[0], before[1] + value[1])
        elif kind == "bdm":
            figures.by_bdm.append((int(key), first, last, username, *value))
        elif kind == "arrears":
            figures.arrears[key] = value
        else:
            figures.timeliness[key] = value
    figures.by_month = dict(sorted(figures.by_month.items()))
    figures.by_bdm.sort(key=lambda row: (row[1] or "", row[2] or "", row[0]))
    memo[memo_key] = figures
    return figures
