"""Billing: line totals (tax per line, half-up cents), quotation and invoice statuses, the
one-time conversion, payments (partial, full, overpayment refused with nothing written), void,
the ledger after a scripted day, bad input, and row scoping."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.billing import services
from app.billing.models import BillingProduct, Invoice, InvoiceLine, Payment, Quotation
from app.core.errors import ConflictError, FieldError, NotFound
from app.extensions import db
from app.ledger import services as ledger
from app.ledger.models import JournalEntry
from tests.billing_support import (
    TODAY,
    issued_invoice,
    make_client,
    make_invoice,
    make_product,
    two_lines,
)
from tests.support import count

D = Decimal


def balance(code: str) -> Decimal:
    row = next(r for r in ledger.trial_balance() if r.code == code)
    return row.debit - row.credit


# ---- totals -----------------------------------------------------------------------------------


def test_line_totals_round_half_up_to_the_cent_and_tax_is_per_line(app):
    assert services.line_amounts(D("3"), D("333.33"), D("18")) == (
        D("999.99"),
        D("180.00"),
        D("1179.99"),
    )
    # 0.125 -> 0.13 (half up, not banker's 0.12)
    assert services.line_amounts(D("0.5"), D("0.25"), D("0")) == (D("0.13"), D("0.00"), D("0.13"))
    # tax 2.5 x 5% = 0.125 -> 0.13
    assert services.line_amounts(D("1"), D("2.50"), D("5")) == (D("2.50"), D("0.13"), D("2.63"))
    invoice = make_invoice(make_client())
    db.session.commit()
    assert [line.total for line in invoice.lines] == [D("1179.99"), D("15.83")]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        D("1015.07"),
        D("180.75"),
        D("1195.82"),
    )


def test_a_line_from_a_product_takes_its_price_and_rate(app):
    product = make_product(price="1500.00", rate="18")
    invoice = make_invoice(make_client(), lines=[{"product_id": product.id, "quantity": "2"}])
    line = invoice.lines[0]
    assert line.description == "Consulting hour"
    assert (line.subtotal, line.tax, line.total) == (D("3000.00"), D("540.00"), D("3540.00"))


# ---- quotations -------------------------------------------------------------------------------


def new_quotation(client, valid_until=date(2026, 3, 31)) -> Quotation:
    quotation = services.create_quotation(
        {"client_id": client.id, "valid_until": valid_until, "lines": two_lines()}, today=TODAY
    )
    db.session.commit()
    return quotation


def test_quotation_moves_and_converts_once(app):
    quotation = new_quotation(make_client())
    assert quotation.number == "Q-2026-00001"
    assert quotation.total == D("1195.82")
    with pytest.raises(ConflictError, match="can move to sent"):
        services.move_quotation(quotation.id, "accepted", today=TODAY)
    with pytest.raises(ConflictError, match="only an accepted"):
        services.convert_quotation(quotation.id, today=TODAY)
    services.move_quotation(quotation.id, "sent", today=TODAY)
    services.move_quotation(quotation.id, "accepted", today=TODAY)
    invoice = services.convert_quotation(quotation.id, today=TODAY)
    db.session.commit()
    assert invoice.status == "draft" and invoice.number is None
    assert [(line.description, line.total) for line in invoice.lines] == [
        ("Advisory retainer", D("1179.99")),
        ("Courier", D("15.83")),
    ]
    assert invoice.total == quotation.total and invoice.quotation_id == quotation.id
    with pytest.raises(ConflictError, match="already converted"):
        services.convert_quotation(quotation.id, today=TODAY)
    db.session.rollback()
    assert count(Invoice) == 1


def test_an_expired_quotation_cannot_be_accepted(app):
    quotation = new_quotation(make_client(), valid_until=date(2026, 3, 10))
    services.move_quotation(quotation.id, "sent", today=TODAY)
    with pytest.raises(ConflictError, match="valid until 2026-03-10"):
        services.move_quotation(quotation.id, "accepted", today=date(2026, 3, 11))


def test_second_quotation_gets_the_next_number(app):
    client = make_client()
    assert [new_quotation(client).number for _ in range(2)] == ["Q-2026-00001", "Q-2026-00002"]


# ---- invoices -------------------------------------------------------------------------------


def test_issue_numbers_the_invoice_posts_it_and_freezes_its_lines(app):
    client = make_client()
    first = issued_invoice(client)
    second = issued_invoice(client)
    assert (first.number, second.number) == ("INV-2026-000001", "INV-2026-000002")
    assert first.status == "issued" and first.issue_date == TODAY
    assert balance(ledger.INVOICES_RECEIVABLE) == D("2391.64")
    assert balance(ledger.SALES_INCOME) == -D("2030.14")
    assert balance(ledger.TAX_PAYABLE) == -D("361.50")
    with pytest.raises(ConflictError, match="cannot change"):
        services.add_invoice_line(first, {"description": "x", "quantity": "1", "unit_price": "1"})
    with pytest.raises(ConflictError, match="only a draft"):
        services.issue_invoice(first.id, today=TODAY)


def test_partial_then_full_payment_and_overpayment_refused_with_nothing_written(app):
    invoice = issued_invoice(make_client())
    services.record_payment(invoice.id, {"amount": "200.00", "method": "upi"}, today=TODAY)
    db.session.commit()
    assert invoice.status == "partially_paid" and invoice.balance_due == D("995.82")
    entries = count(JournalEntry)
    with pytest.raises(FieldError, match="balance due of 995.82"):
        services.record_payment(invoice.id, {"amount": "995.83"}, today=TODAY)
    db.session.rollback()
    assert count(Payment) == 1 and count(JournalEntry) == entries
    db.session.refresh(invoice)
    assert invoice.amount_paid == D("200.00")
    services.record_payment(invoice.id, {"amount": "995.82", "method": "cash"}, today=TODAY)
    db.session.commit()
    assert invoice.status == "paid" and invoice.balance_due == 0
    with pytest.raises(ConflictError, match="is paid"):
        services.record_payment(invoice.id, {"amount": "1.00"}, today=TODAY)
    assert balance(ledger.INVOICES_RECEIVABLE) == 0
    assert balance(ledger.CASH) == D("1195.82")


def test_payment_on_a_draft_is_refused(app):
    invoice = make_invoice(make_client())
    db.session.commit()
    with pytest.raises(ConflictError, match="draft"):
        services.record_payment(invoice.id, {"amount": "1.00"}, today=TODAY)


def test_void_reverses_the_issue_and_is_refused_once_paid(app):
    client = make_client()
    invoice = issued_invoice(client)
    services.void_invoice(invoice.id, "raised in error", today=TODAY)
    db.session.commit()
    assert invoice.status == "void"
    assert balance(ledger.INVOICES_RECEIVABLE) == 0 and balance(ledger.SALES_INCOME) == 0
    paid = issued_invoice(client)
    services.record_payment(paid.id, {"amount": "10.00"}, today=TODAY)
    db.session.commit()
    with pytest.raises(ConflictError, match="nothing was paid"):
        services.void_invoice(paid.id, "changed mind", today=TODAY)


def test_trial_balance_is_zero_after_a_scripted_day(app):
    clients = [make_client(name=f"Client {i}") for i in range(3)]
    product = make_product(price="2499.99", rate="12.5")
    invoices = []
    for i, client in enumerate(clients):
        lines = [*two_lines(), {"product_id": product.id, "quantity": str(i + 1)}]
        invoices.append(issued_invoice(client, lines))
    services.record_payment(invoices[0].id, {"amount": str(invoices[0].total)}, today=TODAY)
    services.record_payment(invoices[1].id, {"amount": "123.45", "method": "card"}, today=TODAY)
    services.void_invoice(invoices[2].id, "duplicate", today=TODAY)
    db.session.commit()
    rows = ledger.trial_balance()
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows)
    assert sum(r.debit - r.credit for r in rows) == 0
    # what is still owed is exactly invoice 2's balance
    assert balance(ledger.INVOICES_RECEIVABLE) == invoices[1].total - D("123.45")
    assert [i.status for i in invoices] == ["paid", "partially_paid", "void"]


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, field",
    [
        ({"description": "x", "quantity": "-1", "unit_price": "1"}, "lines-0-quantity"),
        ({"description": "x", "quantity": "0", "unit_price": "1"}, "lines-0-quantity"),
        (
            {"description": "x", "quantity": "1", "unit_price": "1", "tax_rate": "101"},
            "lines-0-tax_rate",
        ),
        ({"description": "x", "quantity": "NaN", "unit_price": "1"}, "lines-0-quantity"),
        ({"description": "x", "quantity": "1", "unit_price": "NaN"}, "lines-0-unit_price"),
        ({"description": "x", "quantity": "1", "unit_price": "1e309"}, "lines-0-unit_price"),
        ({"description": "x", "quantity": "1e309", "unit_price": "1"}, "lines-0-quantity"),
        ({"description": "x", "quantity": "1", "unit_price": "1.005"}, "lines-0-unit_price"),
        ({"product_id": 999999, "quantity": "1"}, "lines-0-product_id"),
        ({"quantity": "1", "unit_price": "1"}, "lines-0-description"),
    ],
)
def test_bad_lines_are_refused_naming_the_field(app, line, field):
    client = make_client()
    db.session.commit()
    with pytest.raises(FieldError) as refused:
        services.create_invoice({"client_id": client.id, "lines": [line]}, today=TODAY)
    assert refused.value.field == field
    db.session.rollback()
    assert count(Invoice) == 0 and count(InvoiceLine) == 0


@pytest.mark.parametrize("amount", ["-5", "0", "NaN", "1e309", "1.001", "abc", ""])
def test_bad_payment_amounts_are_refused(app, amount):
    invoice = issued_invoice(make_client())
    with pytest.raises(FieldError) as refused:
        services.record_payment(invoice.id, {"amount": amount}, today=TODAY)
    assert refused.value.field == "amount"


@pytest.mark.parametrize("value", ["0000-00-00", "2026-02-30", "yesterday"])
def test_bad_dates_are_refused(app, value):
    client = make_client()
    with pytest.raises(FieldError) as refused:
        services.create_invoice({"client_id": client.id, "due_date": value, "lines": two_lines()})
    assert refused.value.field == "due_date"
    with pytest.raises(FieldError):
        services.create_quotation(
            {"client_id": client.id, "valid_until": value, "lines": two_lines()}
        )


def test_product_checks(app):
    make_product(sku="cons-1")
    assert db.session.scalar(select(BillingProduct.sku)) == "CONS-1"
    with pytest.raises(ConflictError):
        make_product(sku="Cons-1")
    db.session.rollback()
    with pytest.raises(FieldError, match="between"):
        make_product(sku="X2", rate="101")
    db.session.rollback()
    with pytest.raises(FieldError):
        make_product(sku="X3", price="-1")


def test_unknown_invoice_is_not_found(app):
    with pytest.raises(NotFound):
        services.record_payment(424242, {"amount": "1"}, today=TODAY)
