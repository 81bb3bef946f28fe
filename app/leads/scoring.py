"""Lead scoring: rule-based, explainable, weights in settings (``CRM_LEAD_SCORE_WEIGHTS``).

A score is the sum of points for the lead's source, how complete its profile is, how much it has
been engaged (number of interactions) and how recently, and its investment capacity, capped at
100. The breakdown (factor, points, why) is stored beside the score and shown on the lead page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.core.types import utcnow
from app.extensions import db
from app.leads.models import OPEN_LEAD_STATUSES, Interaction, Lead
from app.security.scoping import UNSCOPED

DEFAULT_WEIGHTS = {
    "source": {"referral": 25, "web_form": 15, "campaign": 10, "api": 10, "manual": 5, "import": 5},
    "completeness_per_field": 5,  # e-mail, phone, company, investment capacity
    "engagement_per_interaction": 5,
    "engagement_max": 25,
    "recency": {"7": 15, "30": 8},  # last interaction within N days -> points
    "capacity": {"under_100k": 0, "100k_1m": 5, "1m_10m": 10, "over_10m": 15},
}


@dataclass(frozen=True)
class Factor:
    factor: str
    points: int
    why: str


def weights() -> dict:
    configured = current_app.config.get("CRM_LEAD_SCORE_WEIGHTS") or {}
    return {**DEFAULT_WEIGHTS, **configured}


def score_lead(
    lead: Lead, interactions: int, last_interaction_at: datetime | None, now: datetime | None = None
) -> tuple[int, list[Factor]]:
    """The score of ``lead`` and why, from its fields and its interactions' count and recency."""
    w, now = weights(), now or utcnow()
    factors = [
        Factor(
            "source",
            int(w["source"].get(lead.source or "manual", 0)),
            f"source is {lead.source or 'manual'}",
        )
    ]
    present = [
        name for name in ("email", "phone", "company", "investment_capacity") if getattr(lead, name)
    ]
    factors.append(
        Factor(
            "completeness",
            len(present) * int(w["completeness_per_field"]),
            f"{len(present)} of 4 profile fields filled",
        )
    )
    engagement = min(interactions * int(w["engagement_per_interaction"]), int(w["engagement_max"]))
    factors.append(Factor("engagement", engagement, f"{interactions} interaction(s)"))
    recency, why = 0, "no interaction yet"
    if last_interaction_at is not None:
        days = (now - last_interaction_at).days
        why = f"last interaction {days} day(s) ago"
        for limit, points in sorted(w["recency"].items(), key=lambda kv: int(kv[0])):
            if days <= int(limit):
                recency = int(points)
                break
    factors.append(Factor("recency", recency, why))
    capacity = lead.investment_capacity
    factors.append(
        Factor(
            "capacity",
            int(w["capacity"].get(capacity, 0)) if capacity else 0,
            f"investment capacity {capacity or 'unknown'}",
        )
    )
    return min(sum(f.points for f in factors), 100), factors


def recompute_score(lead: Lead, pending: Interaction | None = None) -> int:
    """Score ``lead`` from the database's interactions (plus ``pending``, not yet saved)."""
    count, last = 0, None
    if lead.id is not None:
        count, last = db.session.execute(
            select(func.count(Interaction.id), func.max(Interaction.occurred_at)).where(
                Interaction.lead_id == lead.id
            ),
            execution_options=UNSCOPED,
        ).one()
    if isinstance(last, datetime) and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if pending is not None and pending.id is None:
        count += 1
        last = max(filter(None, [last, pending.occurred_at]), default=None)
    score, factors = score_lead(lead, count, last)
    lead.score = score
    # vars(), not asdict(): the same three fields, without a deep copy per lead (imports score
    # 100,000 leads at a time).
    lead.score_breakdown = json.dumps([vars(f) for f in factors])
    return score


def rescore_recently_engaged(days: int = 31, batch: int = 1000) -> int:
    """Nightly: recency decays, so re-score open leads whose last interaction is within ``days``
    (older ones no longer earn recency points and do not change). Batched by id."""
    since = utcnow() - timedelta(days=days + 1)
    last_id, done = 0, 0
    while True:
        ids = list(
            db.session.scalars(
                select(Lead.id)
                .where(
                    Lead.id > last_id,
                    Lead.status.in_(OPEN_LEAD_STATUSES),
                    select(Interaction.id)
                    .where(Interaction.lead_id == Lead.id, Interaction.occurred_at >= since)
                    .exists(),
                )
                .order_by(Lead.id)
                .limit(batch),
                execution_options=UNSCOPED,
            )
        )
        if not ids:
            return done
        for lead in db.session.scalars(
            select(Lead).where(Lead.id.in_(ids)), execution_options=UNSCOPED
        ):
            recompute_score(lead)
        db.session.commit()
        done += len(ids)
        last_id = ids[-1]
