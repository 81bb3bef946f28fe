"""The client summaries: clients and their holdings, counted by branch, manager and segment.

``summary_client`` counts clients by the UTC day they became clients, branch, relationship
manager (0: none), segment ('' when none), KYC status and whether they hold anything (a
position with a quantity above zero): the compliance dashboard's KYC chart and the brokerage
dashboard's client counts. ``summary_position`` sums the quantity held (in millionths, the
quantity's precision) per instrument by the client's branch, manager and segment: the brokerage
dashboard values it at the instruments' last prices when it is read, so a new price shows at
once without touching the summary. Both are kept the way ``app.dashboards.summary`` describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    String,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.brokerage.models import Instrument, Position
from app.clients.models import Client
from app.dashboards.summary import (
    Summary,
    among,
    people_clauses,
    register,
    summary_indexes,
    utc_day,
)
from app.extensions import db
from app.security.scoping import scoped

MICRO = 1_000_000
"""Quantities are kept in millionths (``Numeric(18, 6)``)."""


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
    segment: Mapped[str] = mapped_column(String(20))
    compacted: Mapped[bool] = mapped_column(Boolean, default=False)


@scoped
class ClientSummary(_Keyed, Model):
    """Clients who became clients on a UTC day (or in a month) by branch, manager, segment,
    KYC status and whether they hold anything."""

    __tablename__ = "summary_client"
    __table_args__ = _indexes("summary_client")

    kyc_status: Mapped[str] = mapped_column(String(20))
    holder: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=0)

    __scope__ = _scope(lambda: ClientSummary)


@scoped
class PositionSummary(_Keyed, Model):
    """The quantity held per instrument (millionths) by clients of a day's (or month's)
    intake, by branch, manager and segment."""

    __tablename__ = "summary_position"
    __table_args__ = _indexes("summary_position")

    instrument_id: Mapped[int] = mapped_column(Integer)
    quantity_micro: Mapped[int] = mapped_column(BigInteger, default=0)

    __scope__ = _scope(lambda: PositionSummary)


def _client_rows(dialect: str):
    c, p = Client.__table__.c, Position.__table__.c
    day = utc_day(c.created_at, dialect)
    holds = exists(select(p.id).where(p.client_id == c.id, p.quantity > 0))
    holder = case((holds, 1), else_=0)
    groups = (
        day,
        c.branch_id,
        func.coalesce(c.relationship_manager_id, 0),
        func.coalesce(c.segment, ""),
        c.kyc_status,
        holder,
    )
    return select(*groups, func.count()).group_by(*groups)


def _position_rows(dialect: str):
    c, p = Client.__table__.c, Position.__table__.c
    day = utc_day(c.created_at, dialect)
    micro = cast(p.quantity * MICRO, BigInteger)
    if dialect != "postgresql":
        micro = cast(func.round(p.quantity * MICRO), BigInteger)
    groups = (
        day,
        c.branch_id,
        func.coalesce(c.relationship_manager_id, 0),
        func.coalesce(c.segment, ""),
        p.instrument_id,
    )
    return (
        select(*groups, func.sum(micro))
        .select_from(Position.__table__.join(Client.__table__))
        .group_by(*groups)
    )


CLIENTS = register(
    Summary(
        model=ClientSummary,
        dims=("branch_id", "rm_id", "segment", "kyc_status", "holder"),
        measures=("n",),
        watched={
            Client: (
                "created_at",
                "branch_id",
                "relationship_manager_id",
                "segment",
                "kyc_status",
            ),
            Position: ("client_id", "quantity"),
        },
        rows=_client_rows,
        affected=lambda cls, ids: (
            among(Client.__table__.c.id, ids)
            if cls is Client
            else Client.__table__.c.id.in_(
                select(Position.__table__.c.client_id).where(among(Position.__table__.c.id, ids))
            )
        ),
        lock=7_301_005,
        counted=Client.__table__.c.id,
        links={
            Position: lambda position: [position.client_id or getattr(position.client, "id", None)]
        },
    )
)

POSITIONS = register(
    Summary(
        model=PositionSummary,
        dims=("branch_id", "rm_id", "segment", "instrument_id"),
        measures=("quantity_micro",),
        watched={
            Position: ("client_id", "instrument_id", "quantity"),
            Client: ("created_at", "branch_id", "relationship_manager_id", "segment"),
        },
        rows=_position_rows,
        affected=lambda cls, ids: among(
            Position.__table__.c.client_id if cls is Client else Position.__table__.c.id, ids
        ),
        lock=7_301_006,
    )
)


# ---- reading ----------------------------------------------------------------------------------


def _people(model, branch, agent) -> list:
    return [model.grain == "m", *people_clauses(model, branch, agent, "rm_id")]


def kyc_status_counts(branch: int | None, agent: int | None) -> dict[str, int]:
    """Clients by KYC status today (every client, whatever their intake), scoped."""
    s = ClientSummary
    found = db.session.execute(
        select(s.kyc_status, func.sum(s.n))
        .where(*_people(s, branch, agent))
        .group_by(s.kyc_status)
        .having(func.sum(s.n) != 0)
    )
    return {status: int(n) for status, n in found}


@dataclass
class Holdings:
    """Per segment ('' for none): clients, clients holding something, market value."""

    clients: dict[str, int] = field(default_factory=dict)
    holders: dict[str, int] = field(default_factory=dict)
    value: dict[str, Decimal] = field(default_factory=dict)


def holdings_by_segment(branch: int | None, agent: int | None) -> Holdings:
    """The brokerage chart's numbers in one statement over the two summaries (scoped): clients
    and holders per segment, and per segment and instrument the quantity held, valued here at
    the instrument's last price (rounded to the cent per instrument)."""
    s, p = ClientSummary, PositionSummary
    none = null()
    clients = (
        select(literal("clients"), s.segment, s.holder, none, func.sum(s.n).label("amount"), none)
        .where(*_people(s, branch, agent))
        .group_by(s.segment, s.holder)
        .having(func.sum(s.n) != 0)
    )
    positions = (
        select(
            literal("held"),
            p.segment,
            none,
            p.instrument_id,
            func.sum(p.quantity_micro),
            Instrument.last_price,
        )
        .join(Instrument, Instrument.id == p.instrument_id)
        .where(*_people(p, branch, agent))
        .group_by(p.segment, p.instrument_id, Instrument.last_price)
        .having(func.sum(p.quantity_micro) != 0)
    )
    found = Holdings()
    for kind, segment, holder, _instrument, amount, price in db.session.execute(
        union_all(clients, positions)
    ):
        if kind == "clients":
            found.clients[segment] = found.clients.get(segment, 0) + int(amount)
            if holder:
                found.holders[segment] = found.holders.get(segment, 0) + int(amount)
        elif price is not None:
            value = (Decimal(int(amount)) / MICRO * Decimal(str(price))).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            found.value[segment] = found.value.get(segment, Decimal("0.00")) + value
    return found
