"""Saved segments: criteria over clients or leads, checked on save, turned into one WHERE
clause, previewed with a capped count and linked to the list of the rows they pick."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from app.campaigns.models import AUDIENCES, CampaignSegment
from app.clients.models import CLIENT_STATUSES, KYC_STATUSES, RISK_PROFILES, SEGMENTS, Client
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.listing import LIST_COUNT_CAP
from app.core.validators import clean_text, parse_choice
from app.extensions import db
from app.leads.models import (
    INVESTMENT_CAPACITY_BANDS,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPEN_LEAD_STATUSES,
    Lead,
)
from app.org.models import Branch
from app.security.scoping import UNSCOPED, current_actor

CHOICES, BRANCH, YES_NO = "choices", "branch", "yes_no"


@dataclass(frozen=True)
class Criterion:
    column: str
    kind: str
    choices: tuple[str, ...] = ()


CRITERIA: dict[str, dict[str, Criterion]] = {
    "clients": {
        "segment": Criterion("segment", CHOICES, SEGMENTS),
        "risk_profile": Criterion("risk_profile", CHOICES, RISK_PROFILES),
        "kyc_status": Criterion("kyc_status", CHOICES, KYC_STATUSES),
        "status": Criterion("status", CHOICES, CLIENT_STATUSES),
        "branch": Criterion("branch_id", BRANCH),
        "marketing_consent": Criterion("marketing_consent", YES_NO),
    },
    "leads": {
        "status": Criterion("status", CHOICES, LEAD_STATUSES),
        "source": Criterion("source", CHOICES, LEAD_SOURCES),
        "investment_capacity": Criterion("investment_capacity", CHOICES, INVESTMENT_CAPACITY_BANDS),
        "branch": Criterion("branch_id", BRANCH),
        "marketing_consent": Criterion("marketing_consent", YES_NO),
    },
}
DEFAULT_STATUSES = {"clients": ("active",), "leads": OPEN_LEAD_STATUSES}
"""Without a status criterion a segment holds active clients, or open leads (a converted lead
is reached as the client it became)."""
MODELS = {"clients": Client, "leads": Lead}
LIST_VIEWS = {"clients": "ClientView", "leads": "LeadView"}


def _field(name: str) -> str:
    return f"criteria.{name}"


def parse_criteria(audience: str, raw: Any) -> dict[str, Any]:
    """The criteria as stored: known fields only, values among their choices, in a fixed
    order. A FieldError names the first criterion at fault."""
    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise FieldError(f"is not JSON ({exc.msg}).", "criteria") from exc
    if not isinstance(raw, dict):
        raise FieldError("must be an object of field: value(s).", "criteria")
    known = CRITERIA[audience]
    clean: dict[str, Any] = {}
    for name, value in raw.items():
        criterion = known.get(name)
        if criterion is None:
            raise FieldError(
                f"unknown criterion {name!r} for {audience}; allowed: {', '.join(known)}.",
                _field(name),
            )
        if criterion.kind == YES_NO:
            if not isinstance(value, bool):
                raise FieldError("must be true or false.", _field(name))
            clean[name] = value
        elif criterion.kind == BRANCH:
            clean[name] = _branch_value(value, name)
        else:
            items = value if isinstance(value, list) else [value]
            picked = set()
            for item in items:
                if not isinstance(item, str) or item.strip().lower() not in criterion.choices:
                    raise FieldError(
                        f"{item!r} is not one of: {', '.join(criterion.choices)}.", _field(name)
                    )
                picked.add(item.strip().lower())
            if not picked:
                raise FieldError("needs at least one value.", _field(name))
            clean[name] = [c for c in criterion.choices if c in picked]
    return {name: clean[name] for name in known if name in clean}


def _branch_value(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise FieldError("must be a branch id.", _field(name))
    branch_id = int(value)
    if branch_id > 2**31 - 1 or db.session.get(Branch, branch_id) is None:
        raise FieldError(f"no branch {branch_id}.", _field(name))
    return branch_id


def prepare_segment(segment: CampaignSegment) -> CampaignSegment:
    """Clean and check a segment before it is saved (screens and API alike). A member of staff
    limited to a branch makes segments of that branch only."""
    segment.name = clean_text(segment.name, "name", 100, required=True)
    with db.session.no_autoflush:
        clash = db.session.scalar(
            select(CampaignSegment.id).where(
                CampaignSegment.name == segment.name, CampaignSegment.id != (segment.id or 0)
            ),
            execution_options=UNSCOPED,
        )
    if clash:
        raise ConflictError("another segment already has this name.", "name")
    segment.audience = parse_choice(segment.audience or "clients", "audience", AUDIENCES)
    with db.session.no_autoflush:
        criteria = parse_criteria(segment.audience, segment.criteria)
    actor = current_actor()
    if actor is not None and not actor.sees_everything:
        if actor.branch_id is None:
            raise FieldError("you belong to no branch, so you cannot make segments.", "branch")
        if criteria.get("branch", actor.branch_id) != actor.branch_id:
            raise FieldError("you can only pick people of your own branch.", _field("branch"))
        segment.branch_id = actor.branch_id
    elif "branch" in criteria:
        segment.branch_id = criteria["branch"]
    else:
        segment.branch_id = None
    segment.criteria = json.dumps(criteria, sort_keys=False)
    if segment.created_by_id is None and actor is not None:
        segment.created_by_id = actor.user_id
    return segment


def segment_where(segment: CampaignSegment):
    """The WHERE clause of the people the segment holds (the segment's branch included)."""
    model = MODELS[segment.audience]
    criteria = segment.criteria_dict()
    clauses = []
    for name, criterion in CRITERIA[segment.audience].items():
        column = getattr(model, criterion.column)
        if name not in criteria:
            if name == "status":
                clauses.append(column.in_(DEFAULT_STATUSES[segment.audience]))
            continue
        value = criteria[name]
        if criterion.kind == CHOICES:
            clauses.append(column.in_(value))
        else:
            clauses.append(column == value)
    if segment.branch_id is not None:
        clauses.append(model.branch_id == segment.branch_id)
    return and_(*clauses)


def preview_count(segment: CampaignSegment) -> tuple[int, bool]:
    """How many people the segment holds, among those the reader may see, counted up to
    ``LIST_COUNT_CAP``; the flag says there are more."""
    model = MODELS[segment.audience]
    capped = select(model.id).where(segment_where(segment)).limit(LIST_COUNT_CAP + 1).subquery()
    counted = db.session.scalar(select(func.count()).select_from(capped)) or 0
    return min(counted, LIST_COUNT_CAP), counted > LIST_COUNT_CAP


def describe_count(segment: CampaignSegment) -> str:
    count, more = preview_count(segment)
    noun = "client" if segment.audience == "clients" else "lead"
    return f"{count:,}+ {noun}s" if more else f"{count:,} {noun}{'s' if count != 1 else ''}"


def members_url(segment: CampaignSegment) -> str:
    """The client or lead list filtered as the segment picks."""
    from app.dashboards.links import EQ, IN, REL, list_url

    criteria = segment.criteria_dict()
    conditions = []
    for name, criterion in CRITERIA[segment.audience].items():
        if name == "branch":
            branch = criteria.get(name, segment.branch_id)
            if branch is not None:
                conditions.append(("branch", REL, branch))
        elif name in criteria and criterion.kind == CHOICES:
            conditions.append((name, IN, criteria[name]))
        elif name in criteria and criteria[name] is True:
            conditions.append((name, EQ, "y"))  # FAB reads a ticked box as "y"
        elif name in criteria:
            # FAB's list has no "unticked" filter: the list shows everyone else it picks.
            continue
        elif name == "status":
            conditions.append(("status", IN, list(DEFAULT_STATUSES[segment.audience])))
    return list_url(LIST_VIEWS[segment.audience], conditions)


def get_segment(segment_id: Any) -> CampaignSegment:
    segment = (
        db.session.get(CampaignSegment, int(segment_id)) if str(segment_id).isdigit() else None
    )
    if segment is None:
        raise NotFound("no such segment.")
    return segment
