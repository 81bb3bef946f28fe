"""Near duplicates of a lead, and merging two leads into one (DOMAIN section 2, Duplicates)."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import func, or_, select, update

from app.core.errors import ConflictError, FieldError, NotFound
from app.documents.models import Document
from app.extensions import db
from app.leads.models import OPEN_LEAD_STATUSES, Interaction, Lead

NAME_SIMILAR_WITH_SAME_PHONE = 80
NAME_SIMILAR_WITH_SAME_DOMAIN = 90
FREE_MAIL_DOMAINS = frozenset(
    {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com"}
)


@dataclass(frozen=True)
class NearDuplicate:
    lead: Lead
    similarity: int
    reason: str


def _digits(phone: str | None, keep: int = 8) -> str | None:
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    return digits[-keep:] if len(digits) >= keep else None


def near_duplicates(lead: Lead, limit: int = 200) -> list[NearDuplicate]:
    """Open leads the user can see that look like ``lead``: a similar name with the same phone
    digits, or a very similar name at the same (non-webmail) e-mail domain. One SQL pre-filter,
    then fuzzy name matching on at most ``limit`` candidates."""
    clauses = []
    digits = _digits(lead.phone)
    if digits:
        clauses.append(Lead.phone.like(f"%{digits}"))
    domain = lead.email.split("@", 1)[1] if lead.email and "@" in lead.email else None
    if domain and domain not in FREE_MAIL_DOMAINS:
        clauses.append(Lead.email.like(f"%@{domain}"))
    if not clauses:
        return []
    candidates = db.session.scalars(
        select(Lead)
        .where(or_(*clauses), Lead.id != lead.id, Lead.status.in_(OPEN_LEAD_STATUSES))
        .limit(limit)
    )
    found = []
    for other in candidates:
        similarity = int(fuzz.token_sort_ratio(lead.full_name.lower(), other.full_name.lower()))
        same_phone = digits is not None and _digits(other.phone) == digits
        if same_phone and similarity >= NAME_SIMILAR_WITH_SAME_PHONE:
            found.append(NearDuplicate(other, similarity, "similar name, same phone digits"))
        elif not same_phone and similarity >= NAME_SIMILAR_WITH_SAME_DOMAIN:
            found.append(
                NearDuplicate(other, similarity, f"similar name, same e-mail domain ({domain})")
            )
    return sorted(found, key=lambda d: -d.similarity)


def _locked(lead_id: int) -> Lead | None:
    query = select(Lead).where(Lead.id == lead_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead)
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def merge_leads(keep_id: int, other_id: int) -> Lead:
    """Keep ``keep_id``; move every interaction, task, document and note of ``other_id`` onto it,
    fill its empty contact fields from the other, then delete the other. The caller commits."""
    from app.core.audit import record_event
    from app.leads.scoring import recompute_score
    from app.tasks.models import Task

    if keep_id == other_id:
        raise FieldError("a lead cannot be merged with itself.", "other_id")
    first, second = sorted((keep_id, other_id))  # lock in id order: no deadlock between merges
    locked = {first: _locked(first), second: _locked(second)}
    keep, other = locked[keep_id], locked[other_id]
    if keep is None or other is None:
        raise NotFound("no such lead (or it is not one of yours).")
    for lead in (keep, other):
        if lead.status not in OPEN_LEAD_STATUSES:
            raise ConflictError(
                f"lead #{lead.id} is {lead.status}; only open leads are merged.", "status"
            )

    interactions = db.session.execute(
        update(Interaction).where(Interaction.lead_id == other.id).values(lead_id=keep.id)
    ).rowcount
    tasks = db.session.execute(
        update(Task).where(Task.lead_id == other.id).values(lead_id=keep.id)
    ).rowcount
    documents = _move_documents(other.id, keep.id)
    for field in ("email", "phone", "company", "investment_capacity"):
        if not getattr(keep, field) and getattr(other, field):
            setattr(keep, field, getattr(other, field))
    if other.notes:
        keep.notes = "\n\n".join(
            filter(None, [keep.notes, f"(from merged lead #{other.id}) {other.notes}"])
        )
    db.session.delete(other)
    db.session.flush()
    db.session.expire(keep, ["interactions"])
    recompute_score(keep)
    record_event(
        "update",
        record=keep,
        detail=(
            f"merged lead #{other_id} into #{keep_id}: {interactions} interaction(s), {tasks} task(s), "
            f"{documents} document(s) moved"
        ),
    )
    return keep


def _move_documents(from_lead: int, to_lead: int) -> int:
    """Documents keep their order: the moved ones become later versions of the same type."""
    moved = 0
    types = db.session.scalars(
        select(Document.doc_type).where(Document.lead_id == from_lead).distinct()
    )
    for doc_type in list(types):
        top = db.session.scalar(
            select(func.coalesce(func.max(Document.version), 0)).where(
                Document.lead_id == to_lead, Document.doc_type == doc_type
            )
        )
        moved += db.session.execute(
            update(Document)
            .where(Document.lead_id == from_lead, Document.doc_type == doc_type)
            .values(lead_id=to_lead, version=Document.version + top)
        ).rowcount
    return moved
