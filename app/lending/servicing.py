"""A loan after approval: settlement (schedule and disbursement), repayments and fees.

Every posting of a loan names the application as its source, so the application's ledger tab
is one query. Postings (``app.ledger.services``):

- settlement: Dr loans receivable, Cr cash (the amount lent);
- repayment: Dr cash (the amount received), Cr interest income (its interest part),
  Cr loans receivable (its principal part), in one entry;
- fee charged: Dr fees receivable, Cr fee income;
- fee paid: Dr cash, Cr fees receivable.

Repayments are allocated to the schedule oldest due instalment first and, within an instalment,
interest before principal. What a payment brings beyond what is due to date goes on to the
following instalments in order, paying them ahead (their scheduled interest included).

Overpayment rule: a payment larger than the whole outstanding balance (the payoff: remaining
principal plus remaining scheduled interest of every instalment) is refused with a 422 naming
the payoff amount, and nothing is written; there is no credit balance to hold the surplus.

Two repayments of the same loan run one after the other: the application row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL) before the schedule is read, so the second sees what
the first paid. Services add to the session; the caller commits.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.core.errors import ConflictError, FieldError, NotFound
from app.core.validators import clean_text, parse_money
from app.documents.models import Document
from app.extensions import db
from app.ledger import services as ledger
from app.lending.models import (
    FEE_TYPES,
    PAYMENT_METHODS,
    LoanApplication,
    LoanFee,
    LoanInstalment,
    LoanRepayment,
    LoanRepaymentAllocation,
)
from app.lending.schedule import build_schedule
from app.security.scoping import current_actor

ZERO = Decimal("0.00")
"""The largest amount a money column (``Numeric(18, 2)``) holds; anything above is absurd."""


def settle(application: LoanApplication, settled_on: date) -> list[LoanInstalment]:
    """Generate the repayment schedule and post the disbursement (the caller moves the stage
    and commits). Refused if the loan already has a schedule."""
    if application.settled_on is not None:
        raise ConflictError(
            f"{application.reference} was already settled on {application.settled_on}."
        )
    rows = build_schedule(
        application.amount,
        application.interest_rate,
        application.term_months,
        application.repayment_frequency,
        settled_on,
    )
    instalments = [
        LoanInstalment(
            application_id=application.id,
            number=row.number,
            due_date=row.due_date,
            principal=row.principal,
            interest=row.interest,
            total=row.total,
        )
        for row in rows
    ]
    db.session.add_all(instalments)
    application.settled_on = settled_on
    application.instalment_amount = rows[0].total
    ledger.post(
        settled_on,
        f"Disbursement of {application.reference}",
        [
            ledger.debit(ledger.LOANS_RECEIVABLE, application.amount),
            ledger.credit(ledger.CASH, application.amount),
        ],
        application,
    )
    return instalments


# ---- input checks ----


def _a_date(value: object, field: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise FieldError("must be a date.", field)
    return value


def branch_today(application: LoanApplication) -> date:
    """Today where the loan is serviced (its branch's time zone)."""
    return datetime.now(ZoneInfo(application.branch.timezone or "UTC")).date()


def _locked_application(application: LoanApplication) -> LoanApplication:
    """The application row, locked until the transaction ends (``FOR UPDATE`` on PostgreSQL;
    SQLite, which has no row locks, ignores it) and re-read so its state is current."""
    locked = db.session.execute(
        select(LoanApplication)
        .where(LoanApplication.id == application.id)
        .with_for_update(of=LoanApplication)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None:
        raise NotFound("no such loan application.")
    return locked


# ---- balances ----


def outstanding(application: LoanApplication) -> Decimal:
    """Everything still owed on the loan: remaining principal plus remaining scheduled interest
    of all its instalments (one aggregate query). This is the payoff amount."""
    owed = db.session.scalar(
        select(
            func.coalesce(
                func.sum(
                    LoanInstalment.principal
                    - LoanInstalment.paid_principal
                    + LoanInstalment.interest
                    - LoanInstalment.paid_interest
                ),
                0,
            )
        ).where(LoanInstalment.application_id == application.id)
    )
    return ledger.money(Decimal(str(owed)))


def _instalment_status(instalment: LoanInstalment, today: date) -> str:
    if instalment.principal + instalment.interest - instalment.paid == 0:
        return "paid"
    if instalment.due_date < today:
        return "late"
    if instalment.paid > 0:
        return "partial"
    return "scheduled"


# ---- repayments ----


def record_repayment(
    application: LoanApplication,
    amount: Decimal | int | str,
    received_on: date,
    method: str = "bank_transfer",
    reference: str | None = None,
    today: date | None = None,
) -> LoanRepayment:
    """Record money received against a settled loan, allocate it to the schedule (oldest due
    first, interest before principal, the rest paying following instalments ahead) and post
    it. Refused before anything is written when the loan is not settled, the amount is not a
    positive amount in whole cents or exceeds the payoff, the method is unknown, or the date is
    before settlement or in the future. The caller commits."""
    amount = parse_money(amount, "amount")
    if method not in PAYMENT_METHODS:
        raise FieldError(f"must be one of {', '.join(PAYMENT_METHODS)}.", "method")
    reference = clean_text(reference, "reference", 100)
    received_on = _a_date(received_on, "received_on")

    application = _locked_application(application)
    name = application.reference or f"application #{application.id}"
    if application.settled_on is None:
        raise ConflictError(
            f"{name} is not settled (stage {application.stage}); repayments start after "
            "settlement.",
            "stage",
        )
    today = today or branch_today(application)
    if received_on < application.settled_on:
        raise FieldError(
            f"{received_on} is before the loan was settled on {application.settled_on}.",
            "received_on",
        )
    if received_on > today:
        raise FieldError(f"{received_on} is in the future (today is {today}).", "received_on")
    payoff = outstanding(application)
    if payoff == 0:
        raise ConflictError(f"{name} is fully repaid; nothing is owed.", "amount")
    if amount > payoff:
        raise FieldError(
            f"{amount} is more than the {payoff} that pays off {name}; record at most {payoff}.",
            "amount",
        )

    instalments = db.session.scalars(
        select(LoanInstalment)
        .where(LoanInstalment.application_id == application.id, LoanInstalment.status != "paid")
        .order_by(LoanInstalment.due_date, LoanInstalment.number)
        .execution_options(populate_existing=True)
    ).all()
    actor = current_actor()
    repayment = LoanRepayment(
        application_id=application.id,
        amount=amount,
        received_on=received_on,
        method=method,
        reference=reference,
        recorded_by_id=actor.user_id if actor else None,
    )
    left = amount
    interest_part = principal_part = ZERO
    for instalment in instalments:
        if left == 0:
            break
        interest = min(left, instalment.interest - instalment.paid_interest)
        left -= interest
        principal = min(left, instalment.principal - instalment.paid_principal)
        left -= principal
        if interest == 0 and principal == 0:
            continue
        instalment.paid_interest += interest
        instalment.paid_principal += principal
        instalment.status = _instalment_status(instalment, today)
        if instalment.status == "paid":
            instalment.paid_on = received_on
        interest_part += interest
        principal_part += principal
        repayment.allocations.append(
            LoanRepaymentAllocation(
                instalment_id=instalment.id, interest=interest, principal=principal
            )
        )
    if left != 0:  # the payoff check above makes this unreachable
        raise ConflictError(f"{left} of the payment could not be allocated.", "amount")
    repayment.interest_part = interest_part
    repayment.principal_part = principal_part
    entry = ledger.post(
        received_on,
        f"Repayment of {name} ({method}{', ' + reference if reference else ''})",
        [
            ledger.debit(ledger.CASH, amount),
            ledger.credit(ledger.INTEREST_INCOME, interest_part),
            ledger.credit(ledger.LOANS_RECEIVABLE, principal_part),
        ],
        application,
    )
    db.session.add(repayment)
    db.session.flush()
    repayment.journal_entry_id = entry.id
    db.session.flush()
    return repayment


def reverse_repayment(repayment_id: int, reason: str) -> object:
    """Undo a repayment (money paid back): its entry is reversed and what it paid on each
    instalment is owed again. Refused when the entry was already reversed."""
    repayment = db.session.get(LoanRepayment, repayment_id)
    if repayment is None or repayment.journal_entry_id is None:
        raise NotFound("no such repayment.")
    application = _locked_application(repayment.application)
    today = branch_today(application)
    entry = ledger.reverse(repayment.journal_entry_id, max(today, repayment.received_on), reason)
    for allocation in repayment.allocations:
        instalment = db.session.get(LoanInstalment, allocation.instalment_id)
        instalment.paid_interest -= allocation.interest
        instalment.paid_principal -= allocation.principal
        instalment.status = _instalment_status(instalment, today)
        if instalment.status != "paid":
            instalment.paid_on = None
    return entry


# ---- fees ----


def charge_fee(
    application: LoanApplication,
    fee_type: str,
    amount: Decimal | int | str,
    invoice_document: Document | None = None,
) -> LoanFee:
    """Charge a fee on an application: posted at once (Dr fees receivable, Cr fee income) and
    ``waiting`` for payment. The invoice, if any, must be a document of the same application.
    The caller commits."""
    if fee_type not in FEE_TYPES:
        raise FieldError(f"must be one of {', '.join(FEE_TYPES)}.", "fee_type")
    amount = parse_money(amount, "amount")
    if application.id is None:
        raise ConflictError("save the application before charging fees on it.")
    if invoice_document is not None and invoice_document.loan_application_id != application.id:
        raise FieldError(
            "must be a document of this application.",
            "invoice_document",
        )
    name = application.reference or f"application #{application.id}"
    fee = LoanFee(
        application_id=application.id,
        fee_type=fee_type,
        amount=amount,
        status="waiting",
        invoice_document_id=invoice_document.id if invoice_document is not None else None,
    )
    entry = ledger.post(
        branch_today(application),
        f"{fee_type.replace('_', ' ').capitalize()} fee on {name}",
        [ledger.debit(ledger.FEES_RECEIVABLE, amount), ledger.credit(ledger.FEE_INCOME, amount)],
        application,
    )
    db.session.add(fee)
    db.session.flush()
    fee.charge_entry_id = entry.id
    db.session.flush()
    return fee


def pay_fee(fee: LoanFee, paid_on: date, today: date | None = None) -> LoanFee:
    """Record a fee's payment (Dr cash, Cr fees receivable). A fee is paid once: a second
    payment is refused (409). The fee row is locked so two payments of it serialise."""
    paid_on = _a_date(paid_on, "paid_on")
    locked = db.session.execute(
        select(LoanFee)
        .where(LoanFee.id == fee.id)
        .with_for_update(of=LoanFee)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None:
        raise NotFound("no such fee.")
    fee = locked
    application = fee.application
    name = application.reference or f"application #{application.id}"
    if fee.status == "paid":
        raise ConflictError(f"this {fee.fee_type} fee was already paid on {fee.paid_on}.", "status")
    today = today or branch_today(application)
    if paid_on > today:
        raise FieldError(f"{paid_on} is in the future (today is {today}).", "paid_on")
    entry = ledger.post(
        paid_on,
        f"Payment of the {fee.fee_type.replace('_', ' ')} fee on {name}",
        [ledger.debit(ledger.CASH, fee.amount), ledger.credit(ledger.FEES_RECEIVABLE, fee.amount)],
        application,
    )
    db.session.flush()
    fee.status = "paid"
    fee.paid_on = paid_on
    fee.payment_entry_id = entry.id
    db.session.flush()
    return fee


def charge_product_fees(application: LoanApplication) -> list[LoanFee]:
    """Charge the fees of the application's product, one per fee template (meant to run once,
    when the application is created). The caller commits."""
    return [
        charge_fee(application, template.fee_type, template.amount)
        for template in application.product.fee_templates
    ]
