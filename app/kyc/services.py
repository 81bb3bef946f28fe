"""The KYC workflow (DOMAIN section 4): prepare, submit, review with four eyes, approve or reject.

    pending --submit--> in_review --approve--> verified
                            |
                            +------reject--> rejected --submit--> in_review ...

Identifiers are checked with python-stdnum (PAN, Aadhaar's Verhoeff digit, ABN, ACN, IBAN);
IFSC, which python-stdnum does not cover, by its published format. A case may be submitted with
problems (the reviewer sees them); it can only be approved without any. Nobody who prepared,
submitted or uploaded a document of a case may approve it, whatever their role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, and_, func, select
from stdnum import iban as std_iban
from stdnum.exceptions import ValidationError as StdnumError

from app.clients.models import Client
from app.clients.services import BUSINESS_NUMBERS, IDENTIFIERS, keep_unchanged_when_blank
from app.clients.timeline import TimelineEvent, register_timeline_source
from app.core.crypto import lookup_hash
from app.core.errors import ConflictError, FieldError, NotFound, PermissionDenied
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text
from app.documents.models import Document
from app.extensions import db
from app.kyc.models import OPEN_CASE_STATUSES, KycCase, KycCaseDocument, KycCaseEvent
from app.security.scoping import UNSCOPED, Actor, current_actor

IFSC_FORMAT = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")


@dataclass(frozen=True)
class Requirement:
    key: str
    label: str
    doc_types: tuple[str, ...]
    """Any one of these document types meets the requirement."""


REQUIREMENTS: dict[str, tuple[Requirement, ...]] = {
    "individual": (
        Requirement("identity", "Proof of identity", ("passport", "aadhaar")),
        Requirement("pan", "PAN card", ("pan_card",)),
        Requirement("address", "Address proof", ("address_proof",)),
    ),
    "company": (
        Requirement("company_extract", "Company extract", ("company_extract",)),
        Requirement("directors_identity", "Directors' identity", ("director_identity",)),
    ),
}


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    message: str


# ---- identifier checks ---------------------------------------------------------------------


def _stdnum(label: str, module: Any) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            module.validate(value)
        except StdnumError as exc:
            raise ValueError(f"{label} {value!r} is not valid: {exc}") from exc
        return f"{label} is valid"

    return check


def _ifsc(value: str) -> str:
    if not IFSC_FORMAT.match(value.strip().upper()):
        raise ValueError(
            f"IFSC {value!r} is not valid: 4 letters, a zero, then 6 letters or digits"
        )
    return "IFSC is well formed"


# The modules the client record validates with (one table each), plus the bank identifiers.
CHECKERS: dict[str, Callable[[str], str]] = {
    "pan": _stdnum("PAN", IDENTIFIERS["pan"][0]),
    "aadhaar": _stdnum("Aadhaar", IDENTIFIERS["aadhaar"][0]),
    "abn": _stdnum("ABN", BUSINESS_NUMBERS["abn"][0]),
    "acn": _stdnum("ACN", BUSINESS_NUMBERS["acn"][0]),
    "iban": _stdnum("IBAN", std_iban),
    "ifsc": _ifsc,
}


def identifier_checks(case: KycCase) -> list[Check]:
    """Every identifier given on the case, checked; and the ones its client type needs."""
    results: list[Check] = []
    for field, checker in CHECKERS.items():
        value = getattr(case, field)
        if not value:
            continue
        try:
            results.append(Check(field, True, checker(value)))
        except ValueError as exc:
            results.append(Check(field, False, str(exc)))
    client_type = case.client.client_type if case.client else "individual"
    if client_type == "individual" and not case.pan:
        results.append(Check("pan", False, "a PAN is required for an individual"))
    if client_type == "company" and not (case.abn or case.acn or case.registration_number):
        results.append(
            Check("abn", False, "a company needs an ABN, an ACN or a registration number")
        )
    if case.bank_account and not (case.ifsc or case.iban):
        results.append(Check("ifsc", False, "a bank account needs its IFSC or IBAN"))
    return results


# ---- documents -----------------------------------------------------------------------------


def current_documents(client_id: int, doc_types: set[str]) -> dict[str, Document]:
    """The newest version of each of these document types the client has (one query)."""
    newest = (
        select(Document.doc_type, func.max(Document.version).label("version"))
        .where(Document.client_id == client_id, Document.doc_type.in_(doc_types))
        .group_by(Document.doc_type)
        .subquery()
    )
    rows = db.session.scalars(
        select(Document)
        .join(
            newest,
            and_(Document.doc_type == newest.c.doc_type, Document.version == newest.c.version),
        )
        .where(Document.client_id == client_id),
        execution_options=UNSCOPED,
    )
    return {document.doc_type: document for document in rows}


def requirements_for(client: Client) -> tuple[Requirement, ...]:
    return REQUIREMENTS[client.client_type]


def document_status(
    case: KycCase, today: date | None = None
) -> list[tuple[Requirement, Document | None, str | None]]:
    """Each requirement with the document meeting it (the newest of its types) and the problem
    with it, if any: missing or expired."""
    today = today or utcnow().date()
    requirements = requirements_for(case.client)
    found = current_documents(case.client_id, {t for r in requirements for t in r.doc_types})
    status = []
    for requirement in requirements:
        candidates = [found[t] for t in requirement.doc_types if t in found]
        document = max(candidates, key=lambda d: d.uploaded_at, default=None)
        if document is None:
            names = " or ".join(t.replace("_", " ") for t in requirement.doc_types)
            problem = f"{requirement.label} is missing (upload a {names})"
        elif document.expires_on is not None and document.expires_on <= today:
            problem = f"{requirement.label} expired on {document.expires_on.isoformat()}"
        else:
            problem = None
        status.append((requirement, document, problem))
    return status


def problems(case: KycCase, today: date | None = None, status=None) -> list[str]:
    """Everything that stops approval, in words: documents, then identifiers. ``status``: the
    case's ``document_status`` when the caller already has it."""
    status = status if status is not None else document_status(case, today)
    found = [problem for _, _, problem in status if problem]
    found += [c.message for c in identifier_checks(case) if not c.ok]
    if case.client.client_type == "company":
        from app.clients.models import ClientDirector

        directors = db.session.scalar(
            select(func.count(ClientDirector.id)).where(ClientDirector.client_id == case.client_id),
            execution_options=UNSCOPED,
        )
        if not directors:
            found.append("the company has no directors recorded")
    return found


# ---- preparing -----------------------------------------------------------------------------


def _case(case_id: int, lock: bool = False) -> KycCase:
    query = select(KycCase).where(KycCase.id == case_id)
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=KycCase)
    case = db.session.execute(query.execution_options(populate_existing=True)).scalar()
    if case is None:
        raise NotFound("no such KYC case.")
    return case


def _event(case: KycCase, actor: Actor | None, to_status: str, note: str | None = None) -> None:
    case.events.append(
        KycCaseEvent(
            occurred_at=utcnow(),
            actor_id=actor.user_id if actor else None,
            actor_name=(actor.username if actor else None) or "system",
            from_status=case.status if case.id else None,
            to_status=to_status,
            note=note,
        )
    )


@without_autoflush
def prepare_case(case: KycCase, actor: Actor | None = None) -> KycCase:
    """Check a case being opened or edited: one open case per client, identifiers cleaned and
    checked (failures recorded on the case, not refused), edits only before review."""
    actor = actor if actor is not None else current_actor()
    if case.client is None and case.client_id is not None:
        case.client = db.session.scalar(select(Client).where(Client.id == case.client_id))
    if case.client is None:
        raise FieldError("choose a client you look after.", "client")
    case.client_id = case.client.id
    if case.id is None:
        existing = db.session.scalar(
            select(KycCase.id).where(
                KycCase.client_id == case.client_id, KycCase.status.in_(OPEN_CASE_STATUSES)
            ),
            execution_options=UNSCOPED,
        )
        if existing is not None:
            raise ConflictError(
                f"this client already has an open KYC case (#{existing}).",
                "client",
                existing={
                    "type": "kyccase",
                    "id": existing,
                    "url": f"/kyccaseview/show/{existing}",
                },
            )
        case.status = "pending"
        case.prepared_by_id = actor.user_id if actor else None
        _event(case, actor, "pending", "case opened")
    elif case.status not in ("pending", "rejected"):
        raise ConflictError(f"a case that is {case.status} cannot be changed.", "status")
    for field in ("pan", "aadhaar", "bank_account"):
        keep_unchanged_when_blank(case, field)  # secret inputs start blank on the edit form
    for field, limit in (
        ("pan", 20),
        ("aadhaar", 20),
        ("abn", 20),
        ("acn", 20),
        ("registration_number", 50),
        ("bank_account", 34),
        ("ifsc", 20),
        ("iban", 42),
    ):
        value = clean_text(getattr(case, field), field, limit)
        setattr(case, field, value.upper() if value and field in ("pan", "ifsc", "iban") else value)
    case.check_results = json.dumps([c.__dict__ for c in identifier_checks(case)])
    return case


def open_case(client_id: int, actor: Actor | None = None, **identifiers: Any) -> KycCase:
    """A new pending case for the client, identifiers defaulting to the client's own."""
    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None:
        raise NotFound("no such client.")
    values = {
        "pan": client.pan,
        "aadhaar": client.aadhaar,
        "abn": client.abn,
        "acn": client.acn,
        "registration_number": client.registration_number,
        **identifiers,
    }
    case = prepare_case(KycCase(client=client, **values), actor)
    db.session.add(case)
    db.session.flush()
    return case


def least_busy_reviewer(exclude_user_id: int | None) -> int | None:
    """The active Compliance officer with the fewest cases waiting on them (not the submitter)."""
    from flask_appbuilder.security.sqla.models import Role, assoc_user_role

    waiting = func.count(KycCase.id)
    query = (
        select(User.id)
        .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
        .join(Role, and_(Role.id == assoc_user_role.c.role_id, Role.name == "Compliance"))
        .outerjoin(KycCase, and_(KycCase.reviewer_id == User.id, KycCase.status == "in_review"))
        .where(User.active.is_(True))
        .group_by(User.id)
        .order_by(waiting, User.id)
        .limit(1)
    )
    if exclude_user_id is not None:
        query = query.where(User.id != exclude_user_id)
    return db.session.execute(query, execution_options=UNSCOPED).scalar()


def submit_case(case_id: int, actor: Actor | None = None) -> tuple[KycCase, list[str]]:
    """Send a pending or rejected case for review, with the documents current now. Returns the
    case and the problems a reviewer will see (submission is not refused for them)."""
    actor = actor if actor is not None else current_actor()
    case = _case(case_id, lock=True)
    if case.status not in ("pending", "rejected"):
        raise ConflictError(f"a case that is {case.status} cannot be submitted.", "status")
    case.documents.clear()
    db.session.flush()
    for requirement, document, _ in document_status(case):
        if document is not None:
            case.documents.append(
                KycCaseDocument(document_id=document.id, requirement=requirement.key)
            )
    case.check_results = json.dumps([c.__dict__ for c in identifier_checks(case)])
    found = problems(case)
    note = f"submitted with {len(found)} open problem(s)" if found else "submitted"
    _event(case, actor, "in_review", note)
    case.status = "in_review"
    case.submitted_by_id = actor.user_id if actor else None
    case.submitted_at = utcnow()
    case.submissions = (case.submissions or 0) + 1
    case.reviewer_id = least_busy_reviewer(case.submitted_by_id)
    case.rejection_reason = None
    db.session.flush()
    return case, found


# ---- reviewing -----------------------------------------------------------------------------


def four_eyes_conflict(case: KycCase, user_id: int | None) -> str | None:
    """Why ``user_id`` may not approve ``case``, or None."""
    if user_id is None:
        return None
    if user_id == case.prepared_by_id:
        return "you prepared this case"
    if user_id == case.submitted_by_id:
        return "you submitted this case"
    uploaders = {link.document.uploaded_by_id for link in case.documents}
    current = current_documents(
        case.client_id, {t for r in requirements_for(case.client) for t in r.doc_types}
    )
    uploaders |= {document.uploaded_by_id for document in current.values()}
    if user_id in uploaders:
        return "you uploaded a document of this case"
    return None


def approve_case(case_id: int, actor: Actor | None = None) -> KycCase:
    """Verify the client: four eyes, every document present and unexpired, every identifier
    valid. Sets the client's KYC status and identifiers, tells the relationship manager."""
    from app.clients.services import IDENTIFIERS, check_business_number, check_identifier
    from app.comms.services import notify

    actor = actor if actor is not None else current_actor()
    case = _case(case_id, lock=True)
    if case.status != "in_review":
        raise ConflictError(f"only a case in review can be approved; this one is {case.status}.")
    conflict = four_eyes_conflict(case, actor.user_id if actor else None)
    if conflict:
        raise PermissionDenied(f"four eyes: {conflict}, so someone else must approve it.")
    found = problems(case)
    if found:
        raise ConflictError("cannot approve: " + "; ".join(found) + ".")
    _event(case, actor, "verified", "approved")
    case.status = "verified"
    case.reviewed_by_id = actor.user_id if actor else None
    case.reviewed_at = utcnow()
    client = case.client
    client.kyc_status = "verified"
    for field in ("pan", "aadhaar"):
        if getattr(case, field):
            value = check_identifier(field, getattr(case, field))
            setattr(client, field, value)
            setattr(client, IDENTIFIERS[field][1], lookup_hash(field, value))
    for field in ("abn", "acn"):
        if getattr(case, field):
            setattr(client, field, check_business_number(field, getattr(case, field)))
    if case.registration_number:
        client.registration_number = case.registration_number
    if client.relationship_manager_id:
        notify(
            "kyc_verified",
            f"kyc-verified:{case.id}",
            f"KYC verified: {client.name}",
            f"{client.name}'s KYC case #{case.id} was approved.",
            user_id=client.relationship_manager_id,
            related=case,
            link=f"/kyccaseview/show/{case.id}",
        )
    db.session.flush()
    return case


def reject_case(case_id: int, reason: str | None, actor: Actor | None = None) -> KycCase:
    """Send the case back with a reason the preparer can act on."""
    from app.comms.services import notify

    actor = actor if actor is not None else current_actor()
    reason = clean_text(reason, "reason", 1000, required=True)
    case = _case(case_id, lock=True)
    if case.status != "in_review":
        raise ConflictError(f"only a case in review can be rejected; this one is {case.status}.")
    _event(case, actor, "rejected", reason)
    case.status = "rejected"
    case.rejection_reason = reason
    case.reviewed_by_id = actor.user_id if actor else None
    case.reviewed_at = utcnow()
    case.client.kyc_status = "rejected"
    recipient = case.client.relationship_manager_id or case.prepared_by_id
    if recipient:
        notify(
            "kyc_rejected",
            f"kyc-rejected:{case.id}:{case.submissions}",
            f"KYC rejected: {case.client.name}",
            f"KYC case #{case.id} was rejected: {reason}",
            user_id=recipient,
            related=case,
            link=f"/kyccaseview/show/{case.id}",
        )
    db.session.flush()
    return case


def review_queue(limit: int = 100) -> list[KycCase]:
    """Cases in review, oldest submission first."""
    return list(
        db.session.scalars(
            select(KycCase)
            .where(KycCase.status == "in_review")
            .order_by(KycCase.submitted_at, KycCase.id)
            .limit(limit)
        )
    )


# ---- the client's timeline -----------------------------------------------------------------


def _kyc_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="kyc",
        title=f"KYC case #{row.case_id}: {row.to_status.replace('_', ' ')}",
        detail=row.note,
        url=f"/kyccaseview/show/{row.case_id}",
        who=row.actor_name,
    )


@register_timeline_source("kyc", "KYC", _kyc_event)
def kyc_rows(client_id: int) -> Select:
    """Every step of the client's KYC cases."""
    return (
        select(
            KycCaseEvent.occurred_at.label("at"),
            KycCaseEvent.case_id,
            KycCaseEvent.to_status,
            KycCaseEvent.note,
            KycCaseEvent.actor_name,
        )
        .join(KycCase, KycCase.id == KycCaseEvent.case_id)
        .where(KycCase.client_id == client_id)
    )
