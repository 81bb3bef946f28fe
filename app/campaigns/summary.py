"""The campaign attribution summary: leads a campaign brought in, and how many of them are
converted now, per UTC day and month, branch, agent and campaign; kept by every write of a lead
like the sales summary (``app.dashboards.summary``), read by the sales dashboard."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask_appbuilder import Model
from sqlalchemy import BigInteger, Boolean, Date, Integer, String, case, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app.dashboards.summary import (
    Contribution,
    Summary,
    among,
    lead_key,
    people_clauses,
    period_clause,
    register,
    summary_indexes,
    utc_day,
)
from app.leads.models import Lead
from app.security.scoping import scoped


@scoped
class CampaignLeadSummary(Model):
    """Leads with a campaign created on a UTC day (``grain='d'``) or in a month (``'m'``), in a
    branch, by agent (0: none) and campaign: how many, and how many are converted now."""

    __tablename__ = "summary_campaign_lead"
    __table_args__ = summary_indexes("summary_campaign_lead", "branch_id", "agent_id")

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    branch_id: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer)
    n_leads: Mapped[int] = mapped_column(Integer, default=0)
    n_converted: Mapped[int] = mapped_column(Integer, default=0)
    compacted: Mapped[bool] = mapped_column(Boolean, default=False)

    __scope__ = {
        "branch": lambda actor: CampaignLeadSummary.branch_id == actor.branch_id,
        "own": lambda actor: CampaignLeadSummary.agent_id == actor.user_id,
    }


def _rows(dialect: str):
    t = Lead.__table__.c
    day = utc_day(t.created_at, dialect)
    agent = func.coalesce(t.assigned_agent_id, 0)
    return (
        select(
            day,
            t.branch_id,
            agent,
            t.campaign_id,
            func.count(),
            func.sum(case((t.status == "converted", 1), else_=0)),
        )
        .where(t.campaign_id.is_not(None))
        .group_by(day, t.branch_id, agent, t.campaign_id)
    )


def _from_values(rows: list[dict]) -> Contribution:
    """What leads about to be bulk-inserted (an import) add: those naming a campaign."""
    now = datetime.now(UTC)
    found: dict[tuple, list[int]] = {}
    for row in rows:
        if not row.get("campaign_id"):
            continue
        key = (*lead_key(row, now), row["campaign_id"])
        counts = found.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += 1 if row.get("status") == "converted" else 0
    return {key: tuple(counts) for key, counts in found.items()}


CAMPAIGN_LEADS = register(
    Summary(
        model=CampaignLeadSummary,
        dims=("branch_id", "agent_id", "campaign_id"),
        measures=("n_leads", "n_converted"),
        watched={Lead: ("status", "campaign_id", "branch_id", "assigned_agent_id", "created_at")},
        rows=_rows,
        affected=lambda cls, ids: among(Lead.__table__.c.id, ids),
        lock=7_301_021,
        from_values=_from_values,
    )
)


def leads_and_conversions_by_campaign(
    date_from: date | None, date_to: date | None, branch: int | None, agent: int | None
) -> list[tuple[int, int, int]]:
    """(campaign id, leads, converted) of the period: one grouped statement over the summary,
    through the session (the reader's row scope applies)."""
    from app.extensions import db

    s = CampaignLeadSummary
    where = [period_clause(s, date_from, date_to), *people_clauses(s, branch, agent, "agent_id")]
    found = db.session.execute(
        select(s.campaign_id, func.sum(s.n_leads), func.sum(s.n_converted))
        .where(*where)
        .group_by(s.campaign_id)
        .having(func.sum(s.n_leads) != 0)
    ).all()
    return [(campaign_id, int(n or 0), int(c or 0)) for campaign_id, n, c in found]
