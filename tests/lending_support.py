"""Factories for the lending desk's tests: products, brokers, applications, settled loans."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from app.extensions import db
from app.lending.models import Broker, LoanApplication, LoanParty, LoanProduct
from app.lending.servicing import settle
from app.org.models import Branch, StaffProfile

_counter = itertools.count(1)


def make_product(**fields: object) -> LoanProduct:
    values = {
        "name": f"Home loan {next(_counter)}",
        "loan_type": "residential",
        "min_rate": Decimal("2.0"),
        "max_rate": Decimal("10.0"),
        "min_term_months": 12,
        "max_term_months": 360,
        "min_amount": Decimal("50000.00"),
        "max_amount": Decimal("5000000.00"),
    }
    values.update(fields)
    product = LoanProduct(**values)
    db.session.add(product)
    db.session.flush()
    return product


def make_broker(branch: Branch, user: StaffProfile | None = None, **fields: object) -> Broker:
    n = next(_counter)
    values = {
        "company": f"Broker Co {n}",
        "contact_name": f"Broker Contact {n}",
        "email": f"broker{n}@test.example",
        "branch_id": branch.id,
        "user_id": user.user_id if user else None,
    }
    values.update(fields)
    broker = Broker(**values)
    db.session.add(broker)
    db.session.flush()
    return broker


def make_application(
    bdm: StaffProfile,
    product: LoanProduct | None = None,
    broker: Broker | None = None,
    borrower_email: str | None = "borrower@test.example",
    **fields: object,
) -> LoanApplication:
    """An application with one individual borrower, written directly (no workflow)."""
    product = product or make_product()
    values = {
        "amount": Decimal("500000.00"),
        "term_months": 360,
        "interest_rate": Decimal("5.5"),
        "repayment_frequency": "monthly",
        "application_type": "purchase",
        "product_id": product.id,
        "branch_id": bdm.branch_id,
        "bdm_id": bdm.user_id,
        "broker_id": broker.id if broker else None,
        "stage": "approved",
    }
    values.update(fields)
    application = LoanApplication(**values)
    db.session.add(application)
    db.session.flush()
    application.reference = f"LA-{application.id:06d}"
    db.session.add(
        LoanParty(
            application_id=application.id,
            role="borrower",
            party_type="individual",
            first_name="Bea",
            last_name=f"Borrower{next(_counter)}",
            email=borrower_email,
        )
    )
    db.session.flush()
    return application


def make_settled_loan(bdm: StaffProfile, settled_on: date, **fields: object) -> LoanApplication:
    application = make_application(bdm, **fields)
    settle(application, settled_on)
    application.stage = "settled"
    db.session.flush()
    return application
