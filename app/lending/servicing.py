"""A loan after approval: settlement (schedule and disbursement).

Every posting of a loan names the application as its source, so the application's ledger tab
is one query. Postings (``app.ledger.services``):

- settlement: Dr loans receivable, Cr cash (the amount lent).
"""

from __future__ import annotations

from datetime import date

from app.core.errors import ConflictError
from app.extensions import db
from app.ledger import services as ledger
from app.lending.models import LoanApplication, LoanInstalment
from app.lending.schedule import build_schedule


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
