"""Loan applications: one submit creates the application and all its parties (or nothing);
stages move only along the state machine, each move recorded; notes and documents.

Who may do what comes from ``app.security.roles``: anyone with ``write`` on LoanApplication
(brokers, BDMs, managers) submits and withdraws; moving to ``approved``, ``declined``,
``settled`` or ``closed`` needs ``decide`` (BDMs and managers), recording money needs ``repay``.
Which applications someone reaches is row scoping: a broker's own, a BDM's own, a branch's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import Role, assoc_user_role
from sqlalchemy import func, select
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.in_ import pan as in_pan

from app.clients.models import Client
from app.clients.services import check_business_number, check_identifier
from app.core.errors import ConflictError, DomainError, FieldError, NotFound, PermissionDenied
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import (
    clean_name,
    clean_text,
    normalise_email,
    normalise_phone,
    parse_choice,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
)
from app.extensions import db
from app.lending import servicing
from app.lending.models import (
    APPLICATION_TYPES,
    EMPLOYMENT_TYPES,
    FEE_TYPES,
    FREQUENCIES,
    LOAN_TYPES,
    MARITAL_STATUSES,
    PARTY_ROLES,
    PARTY_TYPES,
    RESIDENCIES,
    Broker,
    LoanApplication,
    LoanInstalment,
    LoanNote,
    LoanParty,
    LoanProduct,
    LoanProductFee,
    LoanStageEvent,
)
from app.org.services import active_users_with_role
from app.security.roles import DECIDE, REPAY, allowed
from app.security.scoping import UNSCOPED, Actor, current_actor

# from -> the stages it may move to
MOVES: dict[str, tuple[str, ...]] = {
    "inquiry": ("application", "declined", "withdrawn"),
    "application": ("assessment", "declined", "withdrawn"),
    "assessment": ("approved", "declined", "withdrawn"),
    "approved": ("settled", "declined", "withdrawn"),
    "settled": ("closed",),
    "closed": (),
    "declined": (),
    "withdrawn": (),
}
DECIDING = frozenset({"approved", "declined", "settled", "closed"})
"""Moves to these stages are credit decisions (permission ``decide``)."""
NEEDS_REASON = frozenset({"declined", "withdrawn"})
SUBMIT_STAGES = ("inquiry", "application")
TERMS_EDITABLE = ("inquiry", "application", "assessment")
"""Amount, term and rate may change until approval (which is given on those terms)."""


class FormErrors(DomainError):
    """Several inputs are wrong at once: ``errors`` maps each field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        first = next(iter(self.errors.items()))
        super().__init__(f"{len(self.errors)} problem(s); first: {first[0]}: {first[1]}")

    def __str__(self) -> str:
        return "; ".join(f"{field}: {message}" for field, message in self.errors.items())

    def as_json(self) -> dict:
        return {"message": {field: [message] for field, message in self.errors.items()}}


def may(actor: Actor | None, action: str) -> bool:
    """Whether the actor's roles grant ``action`` on loan applications (None: the system)."""
    if actor is None:
        return True
    return any(allowed(role, "LoanApplication", action) for role in actor.roles)


def get_application(application_id: Any, lock: bool = False) -> LoanApplication:
    """The application as the actor sees it (another broker's is simply not found)."""
    try:
        pk = int(application_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("no such loan application.") from exc
    query = select(LoanApplication).where(LoanApplication.id == pk)
    if lock:
        query = query.with_for_update()
    application = db.session.scalar(query)
    if application is None:
        raise NotFound("no such loan application.")
    return application


# ---- submitting an application with its parties ------------------------------------------


class _Collector:
    """Runs each field rule, keeping every message instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def take(self, field: str, rule, *args, **kwargs):
        try:
            return rule(*args, **kwargs)
        except FieldError as exc:
            self.errors.setdefault(field, exc.message)
            return None

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)


def _region() -> str:
    return current_app.config.get("CRM_DEFAULT_PHONE_REGION", "IN")


def _tax_id(value: Any, field: str) -> str | None:
    """A tax identifier: an Australian TFN or an Indian PAN, in its compact form."""
    text = clean_text(value, field, 20)
    if text is None:
        return None
    try:
        return check_identifier("tax_file_number", text)
    except FieldError:
        pass
    try:
        return in_pan.validate(text)
    except StdnumError as exc:
        raise FieldError("is neither a valid tax file number nor a valid PAN.", field) from exc


def _not_future(value: Any, field: str) -> date | None:
    day = parse_date(value, field)
    if day is not None and day > utcnow().date():
        raise FieldError("cannot be in the future.", field)
    return day


def broker_of(actor: Actor | None) -> Broker | None:
    """The broker record a signed-in broker works as."""
    if actor is None or actor.user_id is None:
        return None
    return db.session.scalar(
        select(Broker).where(Broker.user_id == actor.user_id), execution_options=UNSCOPED
    )


def _contact(c: _Collector, prefix: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        f"{prefix}_company": c.take(
            f"{prefix}_company", clean_text, data.get(f"{prefix}_company"), f"{prefix}_company", 200
        ),
        f"{prefix}_contact": c.take(
            f"{prefix}_contact", clean_text, data.get(f"{prefix}_contact"), f"{prefix}_contact", 200
        ),
        f"{prefix}_phone": c.take(
            f"{prefix}_phone",
            normalise_phone,
            data.get(f"{prefix}_phone"),
            _region(),
            f"{prefix}_phone",
        ),
        f"{prefix}_email": c.take(
            f"{prefix}_email", normalise_email, data.get(f"{prefix}_email"), f"{prefix}_email"
        ),
    }


def _terms(c: _Collector, data: Mapping[str, Any], product: LoanProduct | None):
    """Amount, term and rate, each checked, and within the product's limits when it is known:
    one rule for submitting an application and for editing it."""
    amount = c.take("amount", parse_money, data.get("amount"), "amount")
    term = c.take("term_months", parse_int, data.get("term_months"), "term_months", 1, 600)
    rate = c.take(
        "interest_rate",
        parse_decimal,
        data.get("interest_rate"),
        "interest_rate",
        Decimal(0),
        Decimal(100),
    )
    if product is None:
        return amount, term, rate
    limits = (
        ("amount", amount, product.min_amount, product.max_amount, "{:,}"),
        ("term_months", term, product.min_term_months, product.max_term_months, "{} months"),
        ("interest_rate", rate, product.min_rate, product.max_rate, "{}%"),
    )
    for field, value, low, high, shape in limits:
        if value is not None and not low <= value <= high:
            c.fail(
                field,
                f"must be between {shape.format(low)} and {shape.format(high)} for {product.name}.",
            )
    return amount, term, rate


def _loan_fields(c: _Collector, data: Mapping[str, Any], actor: Actor | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    product = None
    product_id = c.take("product_id", parse_int, data.get("product_id"), "product_id", 1, 2**31)
    if product_id is not None:
        product = db.session.scalar(
            select(LoanProduct).where(LoanProduct.id == product_id, LoanProduct.active.is_(True))
        )
        if product is None:
            c.fail("product_id", "no such active loan product.")
    values["product_id"] = product_id
    amount, term, rate = _terms(c, data, product)
    values.update(amount=amount, term_months=term, interest_rate=rate)
    values["repayment_frequency"] = c.take(
        "repayment_frequency",
        parse_choice,
        data.get("repayment_frequency") or "monthly",
        "repayment_frequency",
        FREQUENCIES,
    )
    values["application_type"] = c.take(
        "application_type",
        parse_choice,
        data.get("application_type") or "purchase",
        "application_type",
        APPLICATION_TYPES,
    )
    values["purpose"] = c.take("purpose", clean_text, data.get("purpose"), "purpose", 2000)
    values["estimated_settlement_date"] = c.take(
        "estimated_settlement_date",
        parse_date,
        data.get("estimated_settlement_date"),
        "estimated_settlement_date",
    )
    values["signed_by"] = c.take("signed_by", clean_text, data.get("signed_by"), "signed_by", 200)
    values["signature_date"] = c.take(
        "signature_date", _not_future, data.get("signature_date"), "signature_date"
    )
    values.update(_contact(c, "valuer", data))
    values.update(_contact(c, "qs", data))
    values["stage"] = c.take(
        "stage", parse_choice, data.get("stage") or "application", "stage", SUBMIT_STAGES
    )
    _people(c, data, actor, values)
    return values


def _people(c: _Collector, data: Mapping[str, Any], actor, values: dict[str, Any]) -> None:
    """Broker, BDM, branch and client of a new application."""
    own_broker = broker_of(actor)
    if own_broker is not None:
        broker = own_broker  # a broker always submits as themselves
    else:
        broker_id = c.take(
            "broker_id", parse_int, data.get("broker_id"), "broker_id", 1, 2**31, False
        )
        broker = None
        if broker_id is not None:
            broker = db.session.scalar(select(Broker).where(Broker.id == broker_id))
            if broker is None:
                c.fail("broker_id", "no such broker.")
    values["broker_id"] = broker.id if broker else None
    bdm_id = c.take("bdm_id", parse_int, data.get("bdm_id"), "bdm_id", 1, 2**31, False)
    if bdm_id is None and broker is not None and len(broker.bdms) == 1:
        bdm_id = broker.bdms[0].id
    if bdm_id is None and actor is not None and "LoanOfficer" in actor.roles:
        bdm_id = actor.user_id
    if bdm_id is None:
        c.fail("bdm_id", "choose the BDM (a loan officer) for this application.")
    elif bdm_id not in active_users_with_role("LoanOfficer"):
        c.fail("bdm_id", "is not an active loan officer.")
    elif (
        broker is not None and own_broker is not None and bdm_id not in {u.id for u in broker.bdms}
    ):
        c.fail("bdm_id", "is not one of the BDMs you work with.")
    values["bdm_id"] = bdm_id
    branch_id = None
    if bdm_id is not None:
        from app.org.models import StaffProfile

        branch_id = db.session.scalar(
            select(StaffProfile.branch_id).where(StaffProfile.user_id == bdm_id),
            execution_options=UNSCOPED,
        )
    values["branch_id"] = branch_id or (broker.branch_id if broker else None)
    if values["branch_id"] is None and bdm_id is not None:
        c.fail("bdm_id", "has no branch.")
    client_id = c.take("client_id", parse_int, data.get("client_id"), "client_id", 1, 2**31, False)
    if (
        client_id is not None
        and db.session.scalar(select(Client.id).where(Client.id == client_id)) is None
    ):
        c.fail("client_id", "no such client (or not one of yours).")
    values["client_id"] = client_id


INDIVIDUAL_TEXT = {
    "title": 20,
    "first_name": 100,
    "last_name": 100,
    "employer": 200,
    "occupation": 100,
}
SHARED_TEXT = {"address": 1000, "bank_name": 100}
AMOUNTS = ("annual_income", "monthly_expenses", "total_assets", "total_liabilities")


def _party(c: _Collector, index: int, data: Mapping[str, Any]) -> dict[str, Any]:
    p = f"parties-{index}-"

    def f(name: str) -> str:
        return p + name

    values: dict[str, Any] = {}
    values["role"] = c.take(f("role"), parse_choice, data.get("role"), f("role"), PARTY_ROLES)
    kind = c.take(
        f("party_type"), parse_choice, data.get("party_type"), f("party_type"), PARTY_TYPES
    )
    values["party_type"] = kind
    for name, limit in SHARED_TEXT.items():
        values[name] = c.take(f(name), clean_text, data.get(name), f(name), limit)
    values["email"] = c.take(f("email"), normalise_email, data.get("email"), f("email"))
    values["phone"] = c.take(f("phone"), normalise_phone, data.get("phone"), _region(), f("phone"))
    for name in ("total_assets", "total_liabilities"):
        values[name] = c.take(
            f(name), parse_money, data.get(name), f(name), required=False, allow_zero=True
        )
    values["bank_account"] = c.take(
        f("bank_account"), clean_text, data.get("bank_account"), f("bank_account"), 40
    )
    if kind == "company":
        values["company_name"] = c.take(
            f("company_name"), clean_text, data.get("company_name"), f("company_name"), 200, True
        )
        values["abn"] = c.take(f("abn"), check_business_number, "abn", data.get("abn"))
        values["acn"] = c.take(f("acn"), check_business_number, "acn", data.get("acn"))
        if (
            f("abn") not in c.errors
            and f("acn") not in c.errors
            and not values["abn"]
            and not values["acn"]
        ):
            c.fail(f("abn"), "a company needs an ABN or an ACN.")
        values["directors"] = c.take(
            f("directors"), clean_text, data.get("directors"), f("directors"), 2000
        )
    elif kind == "individual":
        for name, limit in INDIVIDUAL_TEXT.items():
            values[name] = c.take(
                f(name),
                clean_name if name.endswith("_name") else clean_text,
                data.get(name),
                f(name),
                limit,
                name.endswith("_name"),
            )
        dob = c.take(f("date_of_birth"), _not_future, data.get("date_of_birth"), f("date_of_birth"))
        values["date_of_birth"] = dob
        values["marital_status"] = c.take(
            f("marital_status"),
            parse_choice,
            data.get("marital_status"),
            f("marital_status"),
            MARITAL_STATUSES,
            False,
        )
        values["residency"] = c.take(
            f("residency"), parse_choice, data.get("residency"), f("residency"), RESIDENCIES, False
        )
        values["employment_type"] = c.take(
            f("employment_type"),
            parse_choice,
            data.get("employment_type"),
            f("employment_type"),
            EMPLOYMENT_TYPES,
            False,
        )
        values["dependants"] = c.take(
            f("dependants"), parse_int, data.get("dependants"), f("dependants"), 0, 30, False
        )
        values["years_employed"] = c.take(
            f("years_employed"),
            parse_int,
            data.get("years_employed"),
            f("years_employed"),
            0,
            80,
            False,
        )
        for name in ("annual_income", "monthly_expenses"):
            values[name] = c.take(
                f(name), parse_money, data.get(name), f(name), required=False, allow_zero=True
            )
        values["tax_id"] = c.take(f("tax_id"), _tax_id, data.get("tax_id"), f("tax_id"))
    values["guarantees"] = c.take(
        f("guarantees"), parse_int, data.get("guarantees"), f("guarantees"), 1, 50, False
    )
    return values


@dataclass
class Submission:
    application: LoanApplication
    parties: list[LoanParty]


def submit_application(data: Mapping[str, Any], parties: list[Mapping[str, Any]]) -> Submission:
    """Check everything, then add the application, its parties, its first stage event and its
    product's fees to the session (the caller commits). ``FormErrors`` names every bad field
    (``amount``, ``parties-2-abn``...) and nothing is added."""
    actor = current_actor()
    if not may(actor, "write"):
        raise PermissionDenied("you may not submit loan applications.")
    c = _Collector()
    values = _loan_fields(c, data, actor)
    checked = [_party(c, index, party) for index, party in enumerate(parties)]
    if not any(p.get("role") == "borrower" for p in checked):
        c.fail("parties", "an application needs at least one borrower.")
    for index, party in enumerate(checked):
        target = party.get("guarantees")
        field = f"parties-{index}-guarantees"
        if party.get("role") == "guarantor":
            if target is None:
                c.fail(field, "say which borrower (by number) this guarantor guarantees.")
            elif target > len(checked) or checked[target - 1].get("role") != "borrower":
                c.fail(field, f"party {target} is not a borrower of this application.")
        elif target is not None:
            c.fail(field, "only a guarantor guarantees a borrower.")
    if len(parties) > 50:
        c.fail("parties", "at most 50 parties.")
    if c.errors:
        raise FormErrors(c.errors)
    with db.session.no_autoflush:
        application = LoanApplication(
            **values,
            created_by_id=actor.user_id if actor else None,
            stage_changed_at=utcnow(),
        )
        db.session.add(application)
        db.session.flush()
        application.reference = f"LA-{application.id:06d}"
        rows: list[LoanParty] = []
        for party in checked:
            target = party.pop("guarantees")
            row = LoanParty(application_id=application.id, **party)
            if target is not None:
                row.guarantees = rows[target - 1]
            rows.append(row)
        db.session.add_all(rows)
        _record_move(application, None, application.stage, "submitted", actor)
    db.session.flush()
    servicing.charge_product_fees(application)
    return Submission(application, rows)


# ---- stages ------------------------------------------------------------------------------


def _record_move(application, from_stage, to_stage, note, actor) -> LoanStageEvent:
    event = LoanStageEvent(
        application_id=application.id,
        actor_id=actor.user_id if actor else None,
        actor_name=(actor.username if actor and actor.username else "system"),
        from_stage=from_stage,
        to_stage=to_stage,
        note=note,
    )
    db.session.add(event)
    return event


def next_stages(application: LoanApplication, actor: Actor | None) -> list[str]:
    """The stages this actor may move the application to now."""
    return [
        stage for stage in MOVES[application.stage] if stage not in DECIDING or may(actor, DECIDE)
    ]


def remaining(application: LoanApplication) -> Decimal:
    return db.session.scalar(
        select(
            func.coalesce(
                func.sum(
                    LoanInstalment.total
                    - LoanInstalment.paid_principal
                    - LoanInstalment.paid_interest
                ),
                0,
            )
        ).where(LoanInstalment.application_id == application.id),
        execution_options=UNSCOPED,
    )


def move_stage(
    application_id: Any,
    to_stage: str,
    note: str | None = None,
    settled_on: Any = None,
) -> LoanApplication:
    """Move an application to ``to_stage`` if the state machine and the actor's role allow it;
    settling generates the schedule and posts the disbursement. The caller commits."""
    actor = current_actor()
    application = get_application(application_id, lock=True)
    if to_stage not in MOVES:
        raise FieldError(f"must be one of: {', '.join(MOVES)}.", "stage")
    if to_stage not in MOVES[application.stage]:
        allowed_moves = ", ".join(MOVES[application.stage]) or "none (it is final)"
        raise ConflictError(
            f"{application.reference} cannot move from {application.stage} to {to_stage}; "
            f"from {application.stage} it can go to: {allowed_moves}.",
            "stage",
        )
    if to_stage in DECIDING and not may(actor, DECIDE):
        raise PermissionDenied(f"moving an application to {to_stage} is a BDM's decision.")
    note = clean_text(note, "note", 2000)
    if to_stage in NEEDS_REASON and not note:
        raise FieldError(f"say why the application is {to_stage}.", "note")
    if to_stage == "settled":
        day = parse_date(settled_on, "settled_on") or utcnow().date()
        if day > utcnow().date():
            raise FieldError("cannot be in the future.", "settled_on")
        servicing.settle(application, day)
    if to_stage == "closed":
        left = remaining(application)
        if left > 0:
            raise ConflictError(
                f"{application.reference} still has {left:,} to repay; it closes when repaid.",
                "stage",
            )
    from_stage = application.stage
    application.stage = to_stage
    application.stage_changed_at = utcnow()
    _record_move(application, from_stage, to_stage, note, actor)
    return application


# ---- notes, documents, money received --------------------------------------------------------


def add_note(application_id: Any, body: Any, remind_on: Any = None) -> LoanNote:
    actor = current_actor()
    if not may(actor, "write"):
        raise PermissionDenied("you may not add notes to loan applications.")
    application = get_application(application_id)
    text = clean_text(body, "body", 5000, required=True)
    day = parse_date(remind_on, "remind_on")
    if day is not None and day < utcnow().date():
        raise FieldError("cannot be in the past.", "remind_on")
    note = LoanNote(
        application_id=application.id,
        body=text,
        remind_on=day,
        author_id=actor.user_id if actor else None,
    )
    db.session.add(note)
    return note


def upload_document(application_id: Any, doc_type: str, filename: str | None, data: bytes):
    """The next version of a document type for an application (signed form, valuation...)."""
    from app.documents.models import DOC_TYPES
    from app.documents.services import Owner
    from app.documents.services import upload_document as store

    actor = current_actor()
    if not may(actor, "write"):
        raise PermissionDenied("you may not add documents to loan applications.")
    application = get_application(application_id)
    parse_choice(doc_type, "doc_type", DOC_TYPES)
    return store(Owner("loan_application", application), doc_type, filename, data, actor=actor)


def record_repayment(application_id: Any, data: Mapping[str, Any]):
    actor = current_actor()
    if not may(actor, REPAY):
        raise PermissionDenied("recording repayments is for BDMs and managers.")
    application = get_application(application_id, lock=True)
    return servicing.record_repayment(
        application,
        parse_money(data.get("amount"), "amount"),
        parse_date(data.get("received_on"), "received_on") or utcnow().date(),
        data.get("method") or "bank_transfer",
        clean_text(data.get("reference"), "reference", 100),
    )


def add_fee(
    application_id: Any,
    data: Mapping[str, Any],
    invoice: tuple[str | None, bytes] | None = None,
):
    """Charge a fee, with its invoice file (name, bytes) stored as the application's next
    ``invoice`` document when one is given."""
    actor = current_actor()
    if not may(actor, DECIDE):
        raise PermissionDenied("charging fees is for BDMs and managers.")
    application = get_application(application_id)
    amount = parse_money(data.get("amount"), "amount")
    parse_choice(data.get("fee_type"), "fee_type", FEE_TYPES)
    document = upload_document(application.id, "invoice", *invoice) if invoice else None
    if document is not None:
        db.session.flush()
    return servicing.charge_fee(application, data.get("fee_type"), amount, document)


def pay_fee(application_id: Any, fee_id: Any, paid_on: Any = None):
    from app.lending.models import LoanFee

    actor = current_actor()
    if not may(actor, REPAY):
        raise PermissionDenied("recording fee payments is for BDMs and managers.")
    application = get_application(application_id, lock=True)
    fee = db.session.scalar(
        select(LoanFee).where(LoanFee.id == int(fee_id), LoanFee.application_id == application.id)
    )
    if fee is None:
        raise NotFound("no such fee on this application.")
    day = parse_date(paid_on, "paid_on") or utcnow().date()
    return servicing.pay_fee(fee, day)


# ---- records edited on generated screens -------------------------------------------------


def _roles_of(user_ids: list[int]) -> dict[int, set[str]]:
    rows = db.session.execute(
        select(assoc_user_role.c.user_id, Role.name)
        .join(Role, Role.id == assoc_user_role.c.role_id)
        .where(assoc_user_role.c.user_id.in_(user_ids)),
        execution_options=UNSCOPED,
    )
    found: dict[int, set[str]] = {}
    for user_id, name in rows:
        found.setdefault(user_id, set()).add(name)
    return found


@without_autoflush
def prepare_edit(application: LoanApplication) -> LoanApplication:
    """Amount, term and rate change only before approval, within the product's limits."""
    from sqlalchemy import inspect as sa_inspect

    state = sa_inspect(application)
    before = state.attrs.stage.history.deleted
    stage = before[0] if before else application.stage
    money_changed = any(
        state.attrs[name].history.has_changes()
        for name in ("amount", "term_months", "interest_rate")
    )
    if stage not in TERMS_EDITABLE and money_changed:
        raise ConflictError(
            f"{application.reference} is {stage}: its amount, term and rate are fixed.", "amount"
        )
    c = _Collector()
    terms = {
        name: getattr(application, name) for name in ("amount", "term_months", "interest_rate")
    }
    amount, term, rate = _terms(c, terms, application.product)
    if not c.errors:
        application.amount, application.term_months, application.interest_rate = amount, term, rate
    application.purpose = c.take("purpose", clean_text, application.purpose, "purpose", 2000)
    application.signed_by = c.take("signed_by", clean_text, application.signed_by, "signed_by", 200)
    application.signature_date = c.take(
        "signature_date", _not_future, application.signature_date, "signature_date"
    )
    for prefix in ("valuer", "qs"):
        data = {
            name: getattr(application, name)
            for name in (
                f"{prefix}_company",
                f"{prefix}_contact",
                f"{prefix}_phone",
                f"{prefix}_email",
            )
        }
        for name, value in _contact(c, prefix, data).items():
            setattr(application, name, value)
    if c.errors:
        field, message = next(iter(c.errors.items()))
        raise FieldError(message, field)
    return application


@without_autoflush
def prepare_product(product: LoanProduct) -> LoanProduct:
    product.name = clean_text(product.name, "name", 100, required=True)
    parse_choice(product.loan_type, "loan_type", LOAN_TYPES)
    product.min_rate = parse_decimal(product.min_rate, "min_rate", Decimal(0), Decimal(100))
    product.max_rate = parse_decimal(product.max_rate, "max_rate", Decimal(0), Decimal(100))
    if product.max_rate < product.min_rate:
        raise FieldError("must be at least the minimum rate.", "max_rate")
    product.min_term_months = parse_int(product.min_term_months, "min_term_months", 1, 600)
    product.max_term_months = parse_int(product.max_term_months, "max_term_months", 1, 600)
    if product.max_term_months < product.min_term_months:
        raise FieldError("must be at least the minimum term.", "max_term_months")
    product.min_amount = parse_money(product.min_amount, "min_amount")
    product.max_amount = parse_money(product.max_amount, "max_amount")
    if product.max_amount < product.min_amount:
        raise FieldError("must be at least the minimum amount.", "max_amount")
    if product.active is None:
        product.active = True
    return product


@without_autoflush
def prepare_fee_template(template: LoanProductFee) -> LoanProductFee:
    if template.product is None and template.product_id is None:
        raise FieldError("choose the product.", "product")
    parse_choice(template.fee_type, "fee_type", FEE_TYPES)
    template.amount = parse_money(template.amount, "amount")
    return template


@without_autoflush
def prepare_broker(broker: Broker) -> Broker:
    from app.clients.services import keep_unchanged_when_blank

    keep_unchanged_when_blank(broker, "commission_account")
    broker.company = clean_text(broker.company, "company", 200, required=True)
    broker.contact_name = clean_name(broker.contact_name, "contact_name", 200, required=True)
    broker.email = normalise_email(broker.email)
    broker.phone = normalise_phone(broker.phone, _region())
    broker.commission_account = clean_text(broker.commission_account, "commission_account", 40)
    if broker.branch is None and broker.branch_id is None:
        raise FieldError("choose the broker's branch.", "branch")
    people = [u.id for u in broker.bdms] + ([broker.user.id] if broker.user else [])
    roles = _roles_of(people) if people else {}
    if broker.user is not None and "Broker" not in roles.get(broker.user.id, set()):
        raise FieldError(f"{broker.user.username} does not have the Broker role.", "user")
    for user in broker.bdms:
        if "LoanOfficer" not in roles.get(user.id, set()):
            raise FieldError(f"{user.username} is not a loan officer (BDM).", "bdms")
    if broker.active is None:
        broker.active = True
    return broker
