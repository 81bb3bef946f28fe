"""The rules of leads and interactions. Screens and the API call these; they never commit.

``prepare_lead`` cleans and checks a lead before it is saved (new or edited): text hygiene,
normalised e-mail and E.164 phone, choices, the status workflow, and who it is assigned to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, inspect, select

from app.core.errors import ConflictError, FieldError, PermissionDenied
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import (
    clean_name,
    clean_text,
    normalise_email,
    normalise_phone,
    parse_choice,
    refuse_markup,
)
from app.extensions import db
from app.leads.models import (
    INTERACTION_KINDS,
    INVESTMENT_CAPACITY_BANDS,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPEN_LEAD_STATUSES,
    Interaction,
    Lead,
)
from app.leads.scoring import recompute_score
from app.org.models import Branch, StaffProfile
from app.security.scoping import UNSCOPED, Actor, current_actor

# status -> statuses an edit may move it to. `converted` is reached only by conversion.
LEAD_TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"new", "contacted", "qualified", "lost"}),
    "contacted": frozenset({"contacted", "qualified", "lost"}),
    "qualified": frozenset({"qualified", "contacted", "lost"}),
    "lost": frozenset({"lost"}),
    "converted": frozenset({"converted"}),
}

LEAD_TEXT_LIMITS = {
    "first_name": (100, True),
    "last_name": (100, True),
    "company": (200, False),
    "lost_reason": (500, False),
    "notes": (10_000, False),
}


def phone_region() -> str:
    return current_app.config["CRM_DEFAULT_PHONE_REGION"]


def check_lead_email(value: Any) -> str | None:
    return normalise_email(value, "email")


def check_lead_phone(value: Any) -> str | None:
    return normalise_phone(value, phone_region(), "phone")


def _previous_value(obj: object, attribute: str) -> Any:
    history = inspect(obj).attrs[attribute].history
    if history.deleted:
        return history.deleted[0]
    return getattr(obj, attribute) if inspect(obj).persistent else None


@without_autoflush
def prepare_lead(
    lead: Lead,
    actor: Actor | None = None,
    *,
    check_duplicates: bool = True,
    agent_branches: dict[int, int | None] | None = None,
) -> Lead:
    """Clean and check ``lead`` in place before it is added or updated; raise FieldError.

    A bulk caller (the import) passes ``check_duplicates=False`` because it looks every row's
    e-mail and phone up in a few set-based queries itself (``find_exact_duplicates``), and an
    ``agent_branches`` dict that caches each agent's branch across rows.
    """
    actor = actor if actor is not None else current_actor()
    for field, (limit, required) in LEAD_TEXT_LIMITS.items():
        clean = clean_name if field in ("first_name", "last_name") else clean_text
        setattr(lead, field, clean(getattr(lead, field), field, limit, required))
    refuse_markup(lead.company, "company")
    lead.email = check_lead_email(lead.email)
    lead.phone = check_lead_phone(lead.phone)
    if not lead.email and not lead.phone:
        raise FieldError("a lead needs an e-mail address or a phone number.", "email")
    if check_duplicates and (lead.status in OPEN_LEAD_STATUSES or lead.status is None):
        refuse_exact_duplicate(lead.email, lead.phone, exclude_lead_id=lead.id)
    lead.source = parse_choice(lead.source or "manual", "source", LEAD_SOURCES, True)
    lead.investment_capacity = parse_choice(
        lead.investment_capacity, "investment_capacity", INVESTMENT_CAPACITY_BANDS, False
    )
    _check_campaign(lead)
    _check_status_change(lead)
    _assign(lead, actor, agent_branches)
    recompute_score(lead)
    return lead


def _check_campaign(lead: Lead) -> None:
    """The campaign a lead came from must exist (any campaign: its reference is public)."""
    if lead.campaign is not None or lead.campaign_id in (None, ""):
        return
    from app.campaigns.models import Campaign

    found = (
        isinstance(lead.campaign_id, int)
        and 0 < lead.campaign_id < 2**31
        and db.session.scalar(
            select(Campaign.id).where(Campaign.id == lead.campaign_id),
            execution_options=UNSCOPED,
        )
    )
    if not found:
        raise FieldError(f"no campaign {lead.campaign_id}.", "campaign_id")


def campaign_for_code(code: Any) -> int | None:
    """The id of the campaign whose reference (UTM code) is ``code``; FieldError if none."""
    text = str(code or "").strip().lower()
    if not text:
        return None
    from app.campaigns.models import Campaign

    found = db.session.scalar(
        select(Campaign.id).where(Campaign.code == text[:40]), execution_options=UNSCOPED
    )
    if found is None:
        raise FieldError(f"no campaign with the reference {text[:40]!r}.", "campaign")
    return found


def find_exact_duplicate(
    email: str | None, phone: str | None, exclude_lead_id: int | None = None
) -> tuple[str, int, str] | None:
    """An open lead or a client with this (normalised) e-mail or E.164 phone, whoever it belongs
    to: ``(record type, id, field)``. Looked up across every branch on purpose."""
    from app.clients.models import Client

    for model, kind, extra in (
        (Lead, "lead", [Lead.status.in_(OPEN_LEAD_STATUSES)]),
        (Client, "client", []),
    ):
        for field, value in (("email", email), ("phone", phone)):
            if not value:
                continue
            query = select(model.id).where(getattr(model, field) == value, *extra).limit(1)
            if model is Lead and exclude_lead_id is not None:
                query = query.where(Lead.id != exclude_lead_id)
            found = db.session.execute(query, execution_options=UNSCOPED).scalar()
            if found is not None:
                return kind, found, field
    return None


def refuse_exact_duplicate(
    email: str | None, phone: str | None, exclude_lead_id: int | None = None
) -> None:
    """ConflictError naming and linking the existing lead or client with the same e-mail/phone."""
    duplicate = find_exact_duplicate(email, phone, exclude_lead_id)
    if duplicate is not None:
        raise duplicate_conflict(*duplicate)


def duplicate_conflict(kind: str, record_id: int, field: str) -> ConflictError:
    """The refusal for a lead whose ``field`` matches open lead / client ``record_id``."""
    url = f"/{kind}view/show/{record_id}"
    what = "e-mail address" if field == "email" else "phone number"
    return ConflictError(
        f"an open {kind} with this {what} already exists ({kind} #{record_id}: {url}).",
        field,
        existing={"type": kind, "id": record_id, "url": url},
    )


def find_exact_duplicates(
    emails: Iterable[str], phones: Iterable[str]
) -> dict[tuple[str, str], tuple[str, int, str]]:
    """Set-based ``find_exact_duplicate`` for many values at once (the import's check):
    ``(field, value) -> (record type, id, field)`` for each value held by an open lead or a
    client, across every branch. Four queries whatever the number of values; callers chunk."""
    from app.clients.models import Client

    found: dict[tuple[str, str], tuple[str, int, str]] = {}
    wanted = {"email": sorted(set(emails)), "phone": sorted(set(phones))}
    for model, kind, extra in (
        (Lead, "lead", [Lead.status.in_(OPEN_LEAD_STATUSES)]),
        (Client, "client", []),
    ):
        for field, values in wanted.items():
            if not values:
                continue
            column = getattr(model, field)
            rows = db.session.execute(
                select(column, func.min(model.id))
                .where(column.in_(values), *extra)
                .group_by(column),
                execution_options=UNSCOPED,
            )
            for value, record_id in rows:
                # Open leads first, as find_exact_duplicate does.
                found.setdefault((field, value), (kind, record_id, field))
    return found


def _check_status_change(lead: Lead) -> None:
    new_status = parse_choice(lead.status or "new", "status", LEAD_STATUSES, True)
    old_status = _previous_value(lead, "status") if inspect(lead).persistent else None
    if old_status is None:
        if new_status not in ("new", "contacted", "qualified"):
            raise FieldError("a new lead starts as new, contacted or qualified.", "status")
    elif new_status not in LEAD_TRANSITIONS[old_status]:
        if new_status == "converted":
            raise FieldError("use the conversion action to convert a lead.", "status")
        raise FieldError(f"cannot move a {old_status} lead to {new_status}.", "status")
    if new_status == "lost" and not lead.lost_reason:
        raise FieldError("a lost lead needs a reason.", "lost_reason")
    lead.status = new_status


def _assign(
    lead: Lead, actor: Actor | None, agent_branches: dict[int, int | None] | None = None
) -> None:
    """Agents own what they create; managers assign within their branch."""
    # Screens set the relationships, the API may set either: work on ids, then set both.
    if lead.assigned_agent is not None:
        lead.assigned_agent_id = lead.assigned_agent.id
    if lead.branch is not None:
        lead.branch_id = lead.branch.id
    if actor is not None and actor.user_id is not None and not actor.sees_everything:
        if "Manager" in actor.roles:
            if lead.branch_id not in (None, actor.branch_id):
                raise PermissionDenied("a manager assigns leads within their branch.", "branch")
        elif lead.assigned_agent_id not in (None, actor.user_id):
            raise PermissionDenied(
                "only a manager can assign a lead to someone else.", "assigned_agent"
            )
        else:
            lead.assigned_agent_id = actor.user_id
        lead.branch_id = actor.branch_id
    if lead.assigned_agent_id is not None:
        cache = agent_branches if agent_branches is not None else {}
        if lead.assigned_agent_id not in cache:
            cache[lead.assigned_agent_id] = db.session.execute(
                select(StaffProfile.branch_id).where(
                    StaffProfile.user_id == lead.assigned_agent_id
                ),
                execution_options=UNSCOPED,
            ).scalar_one_or_none()
        agent_branch = cache[lead.assigned_agent_id]
        if agent_branch is None:
            raise FieldError("the assigned agent has no staff profile.", "assigned_agent")
        if lead.branch_id is None:
            lead.branch_id = agent_branch
        elif agent_branch != lead.branch_id:
            raise FieldError("the assigned agent works in another branch.", "assigned_agent")
    if lead.branch_id is None:
        raise FieldError("a lead belongs to a branch.", "branch")
    lead.branch = db.session.get(Branch, lead.branch_id)
    if lead.branch is None:
        raise FieldError("no such branch.", "branch")
    lead.assigned_agent = (
        db.session.get(User, lead.assigned_agent_id) if lead.assigned_agent_id else None
    )


@without_autoflush
def prepare_interaction(interaction: Interaction, actor: Actor | None = None) -> Interaction:
    """Clean and check an interaction; the author is the signed-in user."""
    actor = actor if actor is not None else current_actor()
    interaction.kind = parse_choice(interaction.kind, "kind", INTERACTION_KINDS, True)
    interaction.outcome = clean_text(interaction.outcome, "outcome", 200)
    interaction.body = clean_text(interaction.body, "body", 10_000)
    from app.clients.models import Client

    # Scoped look-ups: a lead or client outside the actor's rows is "not found".
    if interaction.lead is None and interaction.lead_id is not None:
        interaction.lead = db.session.scalar(select(Lead).where(Lead.id == interaction.lead_id))
        if interaction.lead is None:
            raise FieldError("no such lead (or it is not one of yours).", "lead")
    if interaction.client is None and interaction.client_id is not None:
        interaction.client = db.session.scalar(
            select(Client).where(Client.id == interaction.client_id)
        )
        if interaction.client is None:
            raise FieldError("no such client (or it is not one of yours).", "client")
    if interaction.lead is not None and interaction.lead.converted_client_id is not None:
        # The lead became a client: its history continues on the client's timeline.
        interaction.client = db.session.get(Client, interaction.lead.converted_client_id)
    if interaction.lead is None and interaction.client is None:
        raise FieldError("an interaction is with a lead or a client: choose one.", "lead")
    if actor is not None and actor.user_id is not None:
        interaction.author = db.session.get(User, actor.user_id)
    if interaction.author is None:
        raise FieldError("an interaction needs an author.", "author")
    if interaction.occurred_at is None:
        interaction.occurred_at = utcnow()
    elif interaction.occurred_at.tzinfo is None:  # forms give naive times, in UTC
        interaction.occurred_at = interaction.occurred_at.replace(tzinfo=UTC)
    if interaction.lead is not None:
        recompute_score(interaction.lead, pending=interaction)
    return interaction


def create_lead(actor: Actor | None = None, **fields: Any) -> Lead:
    """Make, check and add a lead to the session (the caller commits)."""
    lead = Lead(**fields)
    prepare_lead(lead, actor)
    db.session.add(lead)
    return lead


def change_lead_status(
    lead_id: int, status: str, lost_reason: Any = None, actor: Actor | None = None
) -> Lead:
    """Move a lead to ``status`` under the rules of its edit form (``prepare_lead``: the
    workflow, a lost lead's reason, duplicates, assignment), or, to ``converted``, by the
    conversion action. The lead is row-locked and read through the actor's scope (someone
    else's lead is "not found"). The caller commits; a refusal raises before anything is
    written."""
    from app.core.errors import NotFound
    from app.leads.conversion import convert_lead

    actor = actor if actor is not None else current_actor()
    if status == "converted":
        convert_lead(lead_id, actor)
        return db.session.get(Lead, lead_id)
    query = select(Lead).where(Lead.id == lead_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead)
    lead = db.session.execute(query.execution_options(populate_existing=True)).scalar()
    if lead is None:
        raise NotFound("no such lead (or it is not one of yours).")
    lead.status = status
    if status == "lost" and lost_reason is not None:
        lead.lost_reason = lost_reason
    prepare_lead(lead, actor)
    return lead


def add_interaction(lead: Lead, actor: Actor | None = None, **fields: Any) -> Interaction:
    interaction = Interaction(lead=lead, **fields)
    prepare_interaction(interaction, actor)
    db.session.add(interaction)
    return interaction


def anonymise_lost_leads(older_than_days: int) -> int:
    """Retention: lost leads untouched for ``older_than_days`` lose their personal data.

    One set-based UPDATE (no per-row work at a million leads); the run is written to the audit
    log as one event with the count. Returns how many leads were anonymised.
    """
    from datetime import timedelta

    from sqlalchemy import update

    from app.core.audit import record_event

    cutoff = utcnow() - timedelta(days=older_than_days)
    result = db.session.execute(
        update(Lead)
        .where(Lead.status == "lost", Lead.updated_at < cutoff, Lead.first_name != "Anonymised")
        .values(
            first_name="Anonymised",
            last_name="Lead",
            email=None,
            phone=None,
            company=None,
            notes=None,
            next_follow_up_at=None,
        )
        .execution_options(synchronize_session=False),
        execution_options=UNSCOPED,
    )
    count = result.rowcount or 0
    db.session.commit()
    if count:
        record_event(
            "retention",
            record_type="lead",
            detail=f"{count} lost lead(s) anonymised (older than {older_than_days} days)",
        )
    return count
