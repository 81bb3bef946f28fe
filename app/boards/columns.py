"""What a board shows: its columns, each with a bounded number of cards and a cheap count.

Every read goes through the scoped session, so a board shows exactly the rows its list would
(an agent their own leads, a manager the branch's). The cards of all columns are read in one
statement (a UNION ALL of one ``ORDER BY ... LIMIT`` per column, each served by an index of
status, time and key, also within a branch and per agent or BDM); the counts come from the
dashboard summaries (``app.dashboards``), which hold every row's status and are row-scoped
like the rows themselves, so no page counts the million leads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select, union_all
from sqlalchemy.orm import aliased

from app.extensions import db

CARDS_PER_COLUMN = 25
"""Cards a column shows; the rest are one click away in the list, filtered by the column."""


@dataclass
class Card:
    id: int
    column: str
    title: str
    url: str
    details: list[str] = field(default_factory=list)
    changed_at: datetime | None = None


@dataclass
class Column:
    key: str
    label: str
    count: int
    more_url: str
    needs_reason: bool = False
    cards: list[Card] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        """Rows of this column not shown as cards."""
        return max(self.count - len(self.cards), 0)


def label_of(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


def _newest_per_column(part: Callable[[str], Any], keys: Sequence[str]) -> list[Any]:
    """One statement: each column's newest rows (``part(key)`` orders and limits them)."""
    parts = [select(part(key).subquery()) for key in keys]
    return db.session.execute(union_all(*parts)).all()


# ---- leads ---------------------------------------------------------------------------------


def lead_columns(more_url: Callable[[str], str]) -> list[Column]:
    from app.dashboards.summary import LEAD_MEASURES, LeadSummary
    from app.leads.models import LEAD_STATUSES, Lead

    sums = [func.coalesce(func.sum(getattr(LeadSummary, m)), 0) for m in LEAD_MEASURES]
    counts = db.session.execute(select(*sums).where(LeadSummary.grain == "m")).one()
    columns = {
        status: Column(
            status, label_of(status), int(n), more_url(status), needs_reason=status == "lost"
        )
        for status, n in zip(LEAD_STATUSES, counts, strict=True)
    }
    agent = aliased(User)

    def part(status: str):
        return (
            select(
                Lead.id,
                Lead.status,
                Lead.first_name,
                Lead.last_name,
                Lead.company,
                Lead.score,
                Lead.next_follow_up_at,
                Lead.updated_at,
                agent.first_name.label("agent_first"),
                agent.last_name.label("agent_last"),
            )
            .outerjoin(agent, agent.id == Lead.assigned_agent_id)
            .where(Lead.status == status)
            .order_by(Lead.updated_at.desc(), Lead.id.desc())
            .limit(CARDS_PER_COLUMN)
        )

    rows = _newest_per_column(part, LEAD_STATUSES)
    for row in sorted(rows, key=lambda r: (r.updated_at, r.id), reverse=True):
        details = [row.company] if row.company else []
        details.append(f"Score {row.score}")
        if row.next_follow_up_at:
            details.append(f"Follow up {row.next_follow_up_at:%Y-%m-%d %H:%M} UTC")
        agent_name = _name(row.agent_first, row.agent_last)
        details.append(f"Agent: {agent_name}" if agent_name else "Unassigned")
        columns[row.status].cards.append(
            Card(
                row.id,
                row.status,
                _name(row.first_name, row.last_name),
                f"/leadview/show/{row.id}",
                details,
                row.updated_at,
            )
        )
    return list(columns.values())


# ---- loan applications ---------------------------------------------------------------------


def application_columns(more_url: Callable[[str], str]) -> list[Column]:
    from app.dashboards.lending_summary import ApplicationSummary
    from app.lending.models import STAGES, Broker, LoanApplication, LoanProduct
    from app.lending.services import NEEDS_REASON

    s = ApplicationSummary
    found = dict(
        db.session.execute(
            select(s.stage, func.sum(s.n)).where(s.grain == "m").group_by(s.stage)
        ).all()
    )
    columns = {
        stage: Column(
            stage,
            label_of(stage),
            int(found.get(stage) or 0),
            more_url(stage),
            needs_reason=stage in NEEDS_REASON,
        )
        for stage in STAGES
    }
    bdm = aliased(User)

    def part(stage: str):
        a = LoanApplication
        return (
            select(
                a.id,
                a.reference,
                a.stage,
                a.amount,
                a.stage_changed_at,
                LoanProduct.name.label("product"),
                bdm.first_name.label("bdm_first"),
                bdm.last_name.label("bdm_last"),
                Broker.company.label("broker"),
            )
            .join(LoanProduct, LoanProduct.id == a.product_id)
            .outerjoin(bdm, bdm.id == a.bdm_id)
            .outerjoin(Broker, Broker.id == a.broker_id)
            .where(a.stage == stage)
            .order_by(a.stage_changed_at.desc(), a.id.desc())
            .limit(CARDS_PER_COLUMN)
        )

    rows = _newest_per_column(part, STAGES)
    for row in sorted(rows, key=lambda r: (r.stage_changed_at, r.id), reverse=True):
        amount = row.amount if isinstance(row.amount, Decimal) else Decimal(str(row.amount))
        details = [f"{amount:,.2f}", row.product]
        bdm_name = _name(row.bdm_first, row.bdm_last)
        if bdm_name:
            details.append(f"BDM: {bdm_name}")
        if row.broker:
            details.append(f"Broker: {row.broker}")
        details.append(f"In stage since {row.stage_changed_at:%Y-%m-%d}")
        columns[row.stage].cards.append(
            Card(
                row.id,
                row.stage,
                row.reference or f"Application #{row.id}",
                f"/loanapplicationview/show/{row.id}",
                details,
                row.stage_changed_at,
            )
        )
    return list(columns.values())
