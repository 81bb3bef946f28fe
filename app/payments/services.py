"""Payment links and what a provider's events do to them.

A link is made for what is owed (an issued invoice's balance due, a loan's next instalment
still due, a wallet top-up of a chosen amount). An event is applied through the SAME service a
member of staff uses: ``app.billing.services.record_payment``, ``app.lending.services.
record_repayment``, ``app.forex.wallets.deposit``. What that service refuses (an overpayment, a
paid invoice, a repaid loan) is parked as a ``PaymentCredit`` for review, never lost and never
paid twice. Every event is kept once per (provider, event id): a replay changes nothing.
Services add to the session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.audit import record_event
from app.core.errors import ConflictError, DomainError, NotFound, PermissionDenied
from app.core.types import utcnow
from app.core.validators import parse_money
from app.extensions import db
from app.payments.models import PaymentCredit, PaymentEvent, PaymentIntent
from app.payments.providers import (
    EventUnreadable,
    LinkRequest,
    ProviderEvent,
    SignatureRefused,
    configured_provider,
    provider_named,
)
from app.security.roles import REPAY, allowed
from app.security.scoping import acting_as_system, current_actor


def _audit(action: str, record: Any, detail: str) -> None:
    """An audit row in this transaction (it holds the chain's lock once it has written)."""
    from app.core.audit import Entry, append_entries

    db.session.flush()
    entry = Entry(action, record.__tablename__, str(record.id), detail=detail[:2000])
    append_entries(db.session.connection(), [entry])
    db.session.info["crm_audit_chain_locked"] = True


def _require(resource: str, what: str) -> None:
    actor = current_actor()
    if actor is not None and not any(allowed(r, resource, REPAY) for r in actor.roles):
        raise PermissionDenied(f"payment links for {what} are for staff who record its payments.")


def _open_link(intent: PaymentIntent, description: str) -> PaymentIntent:
    actor = current_actor()
    intent.provider = configured_provider().name
    intent.status = "pending"
    intent.created_by_id = actor.user_id if actor else None
    db.session.add(intent)
    db.session.flush()
    metadata = {"fincrm_intent": str(intent.id), "purpose": intent.purpose}
    for name in ("invoice_id", "application_id", "wallet_id"):
        if getattr(intent, name) is not None:
            metadata[name] = str(getattr(intent, name))
    link = configured_provider().create_link(
        LinkRequest(intent.id, intent.amount, intent.currency, description, metadata)
    )
    intent.provider_reference, intent.url = link.reference, link.url
    _audit("payment link", intent, f"{intent!r}: {link.url}")
    return intent


def intent_json(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "id": intent.id,
        "provider": intent.provider,
        "reference": intent.provider_reference,
        "url": intent.url,
        "purpose": intent.purpose,
        "amount": str(intent.amount),
        "currency": intent.currency,
        "status": intent.status,
    }


def link_for_invoice(invoice_id: Any) -> PaymentIntent:
    """A link for an issued invoice's balance due."""
    from app.billing.models import OPEN_INVOICE_STATUSES
    from app.billing.services import get_invoice
    from app.ledger.services import base_currency

    _require("Invoice", "invoices")
    invoice = get_invoice(int(invoice_id))
    if invoice.status not in OPEN_INVOICE_STATUSES or invoice.balance_due <= 0:
        raise ConflictError(
            f"{invoice!r} is {invoice.status}; links are made for issued invoices with a balance "
            "due.",
            "status",
        )
    intent = PaymentIntent(
        purpose="invoice",
        amount=invoice.balance_due,
        currency=base_currency(),
        invoice_id=invoice.id,
        client_id=invoice.client_id,
        branch_id=invoice.client.branch_id,
    )
    return _open_link(intent, f"Invoice {invoice.number}")


def link_for_instalment(application_id: Any) -> PaymentIntent:
    """A link for the oldest instalment of a settled loan that is not fully paid (what is
    still due on it)."""
    from app.ledger.services import base_currency
    from app.lending.models import LoanInstalment
    from app.lending.services import get_application

    _require("LoanApplication", "loan instalments")
    application = get_application(application_id)
    instalment = db.session.scalars(
        select(LoanInstalment)
        .where(LoanInstalment.application_id == application.id, LoanInstalment.status != "paid")
        .order_by(LoanInstalment.due_date, LoanInstalment.number)
    ).first()
    if application.settled_on is None or instalment is None:
        raise ConflictError(f"{application!r} has no instalment due.", "stage")
    due = instalment.principal + instalment.interest - instalment.paid_principal
    due -= instalment.paid_interest
    intent = PaymentIntent(
        purpose="instalment",
        amount=due,
        currency=base_currency(),
        application_id=application.id,
        branch_id=application.branch_id,
    )
    return _open_link(intent, f"Instalment {instalment.number} of {application!r}")


def link_for_wallet_top_up(wallet_id: Any, amount: Any) -> PaymentIntent:
    """A link topping up a client's wallet by ``amount`` in its currency."""
    from app.forex.models import Wallet

    _require("Wallet", "wallets")
    amount = parse_money(amount, "amount")
    wallet = db.session.scalar(select(Wallet).where(Wallet.id == int(wallet_id)))
    if wallet is None:
        raise NotFound("no such wallet.")
    intent = PaymentIntent(
        purpose="wallet_top_up",
        amount=amount,
        currency=wallet.currency,
        wallet_id=wallet.id,
        client_id=wallet.client_id,
        branch_id=wallet.client.branch_id,
    )
    return _open_link(intent, f"Top-up of the {wallet.label}")


# ---- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


def _refuse(status: int, message: str, provider: str, event_id: str | None = None):
    record_event(
        "payment webhook refused",
        record_type="payment_event",
        record_id=event_id,
        detail=f"{provider}: {message}"[:2000],
    )
    return WebhookAnswer(status, {"message": message})


def _find_intent(provider: str, event: ProviderEvent) -> PaymentIntent | None:
    intent = None
    if event.reference:
        intent = db.session.scalar(
            select(PaymentIntent)
            .where(
                PaymentIntent.provider == provider,
                PaymentIntent.provider_reference == event.reference,
            )
            .with_for_update()
        )
    if intent is None and event.intent_id is not None:
        intent = db.session.scalar(
            select(PaymentIntent)
            .where(PaymentIntent.id == event.intent_id, PaymentIntent.provider == provider)
            .with_for_update()
        )
    return intent


def receive_webhook(provider_name: str, payload: bytes, headers: Mapping[str, str]):
    """Check, record and apply one webhook delivery; returns the answer for the provider.
    Commits what it applied (one transaction), or writes nothing but an audit row."""
    provider = provider_named(provider_name)
    if provider is None:
        return _refuse(404, f"{provider_name[:30]} is not the configured payment provider.", "?")
    try:
        provider.verify(payload, headers)
        event = provider.parse_event(payload)
    except SignatureRefused as exc:
        return _refuse(exc.status, exc.message, provider.name)
    except EventUnreadable as exc:
        return _refuse(400, str(exc), provider.name)
    with acting_as_system():
        return _apply(provider.name, event)


def _seen(provider: str, event: ProviderEvent) -> PaymentEvent | None:
    return db.session.scalar(
        select(PaymentEvent).where(
            PaymentEvent.provider == provider, PaymentEvent.event_id == event.event_id
        )
    )


def _duplicate(seen: PaymentEvent) -> WebhookAnswer:
    return WebhookAnswer(200, {"status": "duplicate", "outcome": seen.outcome})


def _apply(provider: str, event: ProviderEvent) -> WebhookAnswer:
    seen = _seen(provider, event)
    if seen is not None:
        return _duplicate(seen)
    if event.type is None:
        return WebhookAnswer(200, {"status": "ignored", "outcome": "not an event FinCRM uses"})
    intent = _find_intent(provider, event)
    if intent is None:
        return _refuse(404, "no payment link matches the event.", provider, event.event_id)
    # The link is locked now: a delivery of the same event that got here first has committed,
    # and this statement sees it.
    seen = _seen(provider, event)
    if seen is not None:
        db.session.rollback()
        return _duplicate(seen)
    if event.amount is not None and event.amount != intent.amount:
        return _refuse(
            422,
            f"the event's amount {event.amount} is not the link's {intent.amount}.",
            provider,
            event.event_id,
        )
    if event.currency is not None and event.currency != intent.currency:
        return _refuse(
            422,
            f"the event's currency {event.currency} is not the link's {intent.currency}.",
            provider,
            event.event_id,
        )
    row = PaymentEvent(
        provider=provider,
        event_id=event.event_id,
        event_type=event.type,
        provider_reference=event.reference,
        amount=event.amount,
        currency=event.currency,
        intent_id=intent.id,
        outcome="received",
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        # The same event recorded at this moment by another delivery (a link not locked yet).
        db.session.rollback()
        seen = _seen(provider, event)
        if seen is None:
            raise
        return _duplicate(seen)
    if event.type == "succeeded":
        row.outcome = _succeeded(intent, row)
    elif event.type == "failed":
        row.outcome = _failed(intent)
    else:
        row.outcome = _refunded(intent)
    _audit("payment event", intent, f"{event.type} {event.event_id}: {row.outcome}")
    db.session.commit()
    return WebhookAnswer(200, {"status": "applied", "intent": intent.id, "outcome": row.outcome})


def _succeeded(intent: PaymentIntent, row: PaymentEvent) -> str:
    if intent.status != "pending" and intent.status != "failed":
        return f"nothing paid: the link is already {intent.status}."
    reference = f"{intent.provider} {intent.provider_reference or intent.id}"[:100]
    try:
        with db.session.begin_nested():
            _pay(intent, reference)
    except DomainError as exc:
        intent.status = "parked"
        intent.note = str(exc)[:500]
        credit = PaymentCredit(
            intent_id=intent.id,
            event_id=row.id,
            amount=intent.amount,
            currency=intent.currency,
            reason=str(exc),
            status="open",
        )
        db.session.add(credit)
        db.session.flush()
        _audit("payment parked", credit, f"{intent!r}: {exc}")
        return f"parked as credit #{credit.id} for review: {exc}"[:300]
    intent.status = "succeeded"
    intent.paid_at = utcnow()
    return f"paid {intent.amount} {intent.currency} on {intent.pays}."


def _pay(intent: PaymentIntent, reference: str) -> None:
    if intent.purpose == "invoice":
        from app.billing.services import record_payment

        payment = record_payment(
            intent.invoice_id, {"amount": intent.amount, "method": "card", "reference": reference}
        )
        intent.payment_id, intent.journal_entry_id = payment.id, payment.journal_entry_id
    elif intent.purpose == "instalment":
        from app.lending.services import get_application, record_repayment
        from app.lending.servicing import branch_today

        application = get_application(intent.application_id)
        repayment = record_repayment(
            application.id,
            {
                "amount": intent.amount,
                "received_on": branch_today(application).isoformat(),
                "method": "card",
                "reference": reference,
            },
        )
        intent.repayment_id, intent.journal_entry_id = repayment.id, repayment.journal_entry_id
    else:
        from app.forex.models import WalletPosting
        from app.forex.wallets import deposit
        from app.ledger.models import JournalLine

        deposit(intent.wallet_id, {"amount": intent.amount, "memo": f"Top-up ({reference})"})
        db.session.flush()
        intent.journal_entry_id = db.session.scalar(
            select(JournalLine.entry_id)
            .join(WalletPosting, WalletPosting.journal_line_id == JournalLine.id)
            .where(WalletPosting.wallet_id == intent.wallet_id)
            .order_by(JournalLine.id.desc())
            .limit(1)
        )


def _failed(intent: PaymentIntent) -> str:
    if intent.status != "pending":
        return f"nothing changed: the link is already {intent.status}."
    intent.status = "failed"
    intent.note = "the provider reported the payment failed."
    return "the link is marked failed; nothing was paid."


def _refunded(intent: PaymentIntent) -> str:
    if intent.status in ("pending", "failed"):
        # A refund before its payment: whatever success arrives later pays nothing.
        intent.status = "refunded"
        return "refund before any payment: the link is closed and will pay nothing."
    if intent.status == "refunded":
        return "nothing changed: the link is already refunded."
    if intent.status == "parked":
        for credit in db.session.scalars(
            select(PaymentCredit).where(PaymentCredit.intent_id == intent.id)
        ):
            credit.status = "resolved"
        intent.status = "refunded"
        return "the parked credit is resolved by the provider's refund."
    try:
        with db.session.begin_nested():
            _reverse(intent)
    except DomainError as exc:
        intent.note = f"refund not reversed automatically: {exc}"[:500]
        return f"refund received; reverse it by hand: {exc}"[:300]
    intent.status = "refunded"
    return f"refunded {intent.amount} {intent.currency} on {intent.pays}."


def _reverse(intent: PaymentIntent) -> None:
    from app.core.types import utcnow as now

    if intent.purpose == "invoice":
        from app.billing.services import refund_payment

        entry = refund_payment(intent.payment_id, f"refund through {intent.provider}")
    elif intent.purpose == "instalment":
        from app.lending.servicing import reverse_repayment

        entry = reverse_repayment(intent.repayment_id, f"refund through {intent.provider}")
    else:
        from app.forex.wallets import withdraw

        withdraw(intent.wallet_id, {"amount": intent.amount, "memo": "Refund of top-up"})
        entry = None
    db.session.flush()
    intent.refund_entry_id = entry.id if entry is not None else None
    intent.paid_at = intent.paid_at or now()
