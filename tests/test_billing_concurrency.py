"""Billing under concurrency on PostgreSQL: invoices issued at the same moment get distinct,
consecutive numbers; payments at the same moment cannot together overpay an invoice."""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import select

from app.billing import services
from app.billing.models import Invoice, Payment
from app.extensions import db
from app.ledger import services as ledger
from tests.billing_support import TODAY, issued_invoice, make_client, make_invoice
from tests.support import count

THREADS = 20


def _run_together(pg_app, work, ids):
    start = threading.Barrier(len(ids))
    outcomes: list[str] = []

    def run(pk):
        with pg_app.app_context():
            try:
                start.wait()
                work(pk)
                db.session.commit()
                outcomes.append("ok")
            except Exception as exc:
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(pk,)) for pk in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_twenty_concurrent_issues_get_twenty_distinct_consecutive_numbers(pg_app):
    client = make_client()
    ids = [make_invoice(client).id for _ in range(THREADS)]
    db.session.commit()
    # The year's sequence row does not exist yet: the first numbers race to create it too.
    outcomes = _run_together(pg_app, lambda pk: services.issue_invoice(pk, today=TODAY), ids)
    assert outcomes == ["ok"] * THREADS
    db.session.expire_all()
    numbers = sorted(db.session.scalars(select(Invoice.number)))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, THREADS + 1)]
    rows = ledger.trial_balance()
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows)


def test_concurrent_payments_cannot_overpay(pg_app):
    invoice = issued_invoice(make_client())  # total 1,195.82
    pk = invoice.id
    each = Decimal("700.00")  # either alone fits the balance, both together do not
    outcomes = _run_together(
        pg_app,
        lambda _: services.record_payment(pk, {"amount": str(each)}, today=TODAY),
        [pk, pk],
    )
    assert sorted(outcomes) == ["FieldError", "ok"]
    db.session.expire_all()
    assert count(Payment) == 1
    invoice = db.session.get(Invoice, pk)
    assert invoice.amount_paid == each and invoice.status == "partially_paid"
