"""Parked credits under review: money a provider collected that its desk's service refused.

Staff resolve an open credit one of two ways, in one transaction with an audit row:

- ``applied``: paid onto an open invoice or a settled loan of the same client, through the same
  service as a payment typed in by staff (so it is posted to the ledger, allocated, and refused
  again if it would overpay: nothing is written then);
- ``refunded``: the money was given back at the provider; the refund's reference is kept.

A resolved credit is never resolved again (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from app.core.errors import ConflictError, FieldError, NotFound, PermissionDenied
from app.core.types import utcnow
from app.core.validators import parse_choice
from app.extensions import db
from app.payments.models import CREDIT_RESOLUTIONS, PaymentCredit, PaymentIntent
from app.security.roles import REPAY, WRITE, allowed
from app.security.scoping import current_actor


def get_credit(credit_id: Any, lock: bool = False) -> PaymentCredit:
    """The credit as the actor sees it (another branch's is not found)."""
    try:
        pk = int(credit_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("no such parked credit.") from exc
    query = select(PaymentCredit).where(PaymentCredit.id == pk)
    if lock:
        query = query.with_for_update(of=PaymentCredit).execution_options(populate_existing=True)
    credit = db.session.scalar(query)
    if credit is None:
        raise NotFound("no such parked credit.")
    return credit


def _may(resource: str, action: str) -> bool:
    actor = current_actor()
    return actor is None or any(allowed(role, resource, action) for role in actor.roles)


def _client_of(intent: PaymentIntent) -> int | None:
    if intent.client_id is not None:
        return intent.client_id
    if intent.application_id is not None:
        from app.lending.models import LoanApplication

        return db.session.scalar(
            select(LoanApplication.client_id).where(LoanApplication.id == intent.application_id)
        )
    return None


def _target(data: Mapping[str, Any]) -> tuple[str, int]:
    invoice = str(data.get("invoice_id") or "").strip()
    application = str(data.get("application_id") or "").strip()
    if bool(invoice) == bool(application):
        raise FieldError("name one invoice or one loan application to apply it to.", "invoice_id")
    field, raw = ("invoice_id", invoice) if invoice else ("application_id", application)
    try:
        return field, int(raw)
    except ValueError as exc:
        raise FieldError(f"{raw[:20]!r} is not a record number.", field) from exc


def _apply(credit: PaymentCredit, data: Mapping[str, Any]) -> str:
    field, pk = _target(data)
    client_id = _client_of(credit.intent)
    reference = f"parked credit #{credit.id}"
    if field == "invoice_id":
        from app.billing.services import get_invoice, record_payment

        if not _may("Invoice", REPAY):
            raise PermissionDenied(
                "applying a credit to an invoice is for staff who record its payments."
            )
        invoice = get_invoice(pk)
        if client_id is None or invoice.client_id != client_id:
            raise FieldError(f"{invoice!r} is not the paying client's invoice.", field)
        payment = record_payment(
            invoice.id, {"amount": credit.amount, "method": "card", "reference": reference}
        )
        credit.applied_payment_id = payment.id
        return f"applied to {invoice!r}"
    from app.lending.services import get_application, record_repayment
    from app.lending.servicing import branch_today

    application = get_application(pk)
    same = application.id == credit.intent.application_id or (
        client_id is not None and application.client_id == client_id
    )
    if not same:
        raise FieldError(f"{application!r} is not the paying client's loan.", field)
    repayment = record_repayment(
        application.id,
        {
            "amount": credit.amount,
            "received_on": branch_today(application).isoformat(),
            "method": "card",
            "reference": reference,
        },
    )
    credit.applied_repayment_id = repayment.id
    return f"applied to {application!r}"


def resolve_credit(credit_id: Any, data: Mapping[str, Any]) -> PaymentCredit:
    """Resolve an open credit (``resolution``: applied or refunded; ``note``; for applied,
    ``invoice_id`` or ``application_id``). Adds to the session; the caller commits."""
    from app.payments.services import _audit

    if not _may("PaymentCredit", WRITE):
        raise PermissionDenied("resolving parked credits is for finance staff.")
    resolution = parse_choice(data.get("resolution"), "resolution", CREDIT_RESOLUTIONS)
    note = str(data.get("note") or "").strip()
    if len(note) > 500:
        raise FieldError("the note is longer than 500 characters.", "note")
    if resolution == "refunded" and len(note) < 3:
        raise FieldError("give the refund's reference at the provider.", "note")
    credit = get_credit(credit_id, lock=True)
    if credit.status != "open":
        raise ConflictError(f"{credit!r} is already {credit.status}.", "status")
    with db.session.begin_nested():
        done = _apply(credit, data) if resolution == "applied" else "refunded at the provider"
    actor = current_actor()
    credit.status = "resolved"
    credit.resolution = resolution
    credit.resolution_note = (f"{done}; {note}" if note else done)[:500]
    credit.resolved_by_id = actor.user_id if actor else None
    credit.resolved_at = utcnow()
    _audit("payment credit resolved", credit, f"{credit!r}: {credit.resolution_note}")
    return credit


def credit_json(credit: PaymentCredit) -> dict[str, Any]:
    return {
        "id": credit.id,
        "intent_id": credit.intent_id,
        "amount": str(credit.amount),
        "currency": credit.currency,
        "status": credit.status,
        "resolution": credit.resolution,
        "resolution_note": credit.resolution_note,
        "applied_payment_id": credit.applied_payment_id,
        "applied_repayment_id": credit.applied_repayment_id,
    }
