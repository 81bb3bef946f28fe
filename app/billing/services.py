"""Billing rules: line totals, numbering, the quotation and invoice state machines, payments and
contracts. Services add to the session; the caller commits (one transaction per action).

Totals: a line's subtotal is quantity x unit price rounded to the cent (half up), its tax is the
subtotal x rate / 100 rounded to the cent (half up), its total their sum; a document's subtotal,
tax and total are the sums of its lines.

Postings (``app.ledger.services``):

- issue: Dr invoices receivable (total), Cr sales income (subtotal), Cr tax payable (tax);
- payment: Dr cash, Cr invoices receivable;
- void: the issue entry reversed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.billing.models import (
    CONTRACT_STATUSES,
    OPEN_INVOICE_STATUSES,
    PAYMENT_METHODS,
    PRODUCT_KINDS,
    ZERO,
    BillingProduct,
    Contract,
    Invoice,
    InvoiceLine,
    NumberSequence,
    Payment,
    Quotation,
    QuotationLine,
)
from app.clients.models import Client
from app.core.audit import record_event
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.validators import (
    clean_text,
    parse_choice,
    parse_date,
    parse_decimal,
    parse_id,
    parse_money,
)
from app.extensions import db
from app.ledger import services as ledger
from app.security.scoping import current_actor

CENT = Decimal("0.01")
MAX_QUANTITY = Decimal("999999999999")
HUNDRED = Decimal("100")


def _today() -> date:
    return utcnow().date()


def _actor_id() -> int | None:
    actor = current_actor()
    return actor.user_id if actor else None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amounts(quantity: Decimal, unit_price: Decimal, tax_rate: Decimal):
    """(subtotal, tax, total) of one line, each rounded half up to the cent."""
    subtotal = cents(quantity * unit_price)
    tax = cents(subtotal * tax_rate / HUNDRED)
    return subtotal, tax, subtotal + tax


def _a_date(value: Any, field: str, required: bool = True) -> date | None:
    if isinstance(value, datetime):
        raise FieldError("must be a date.", field)
    return parse_date(value, field, required=required)


# ---- products and services --------------------------------------------------------------------


def prepare_product(product: BillingProduct) -> BillingProduct:
    """Clean and check a product before it is saved (screen and API)."""
    product.name = clean_text(product.name, "name", 150, required=True)
    sku = clean_text(product.sku, "sku", 40, required=True).upper()
    clash = db.session.scalar(
        select(BillingProduct.id).where(BillingProduct.sku == sku, BillingProduct.id != product.id)
        if product.id
        else select(BillingProduct.id).where(BillingProduct.sku == sku)
    )
    if clash is not None:
        raise ConflictError(f"{sku} is already used by another product.", "sku")
    product.sku = sku
    product.kind = parse_choice(product.kind or "service", "kind", PRODUCT_KINDS)
    product.unit_price = parse_money(product.unit_price, "unit_price", allow_zero=True)
    product.tax_rate = parse_decimal(product.tax_rate, "tax_rate", ZERO, HUNDRED)
    if product.tax_rate != product.tax_rate.quantize(CENT):
        raise FieldError("has at most two decimals.", "tax_rate")
    product.description = clean_text(product.description, "description", 2000)
    if product.active is None:
        product.active = True
    return product


# ---- numbers --------------------------------------------------------------------------------


def next_number(series: str, year: int) -> int:
    """The next number of ``series`` in ``year``: the sequence row is locked until the caller's
    transaction ends, so concurrent callers get consecutive numbers and never the same one."""
    name = f"{series}:{year}"
    locked = (
        select(NumberSequence)
        .where(NumberSequence.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = db.session.scalar(locked)
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(NumberSequence(name=name, next_value=1))
        except IntegrityError:
            pass  # a concurrent first number of the year made the row; wait for its lock
        row = db.session.scalar(locked)
    value = row.next_value
    row.next_value = value + 1
    db.session.flush()
    return value


# ---- lines ------------------------------------------------------------------------------------


def clean_line(data: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """One line's values, checked: a description (or a product's name), a positive quantity,
    a unit price in whole cents (or the product's), a tax rate 0..100 (or the product's)."""
    prefix = f"lines-{index}-" if index is not None else ""
    product = None
    product_id = data.get("product_id")
    if product_id not in (None, ""):
        try:
            product = db.session.get(BillingProduct, parse_id(product_id, "product_id"))
        except FieldError:
            product = None
        if product is None or not product.active:
            raise FieldError("is not an active product or service.", f"{prefix}product_id")
    description = clean_text(data.get("description"), f"{prefix}description", 300)
    if not description:
        if product is None:
            raise FieldError("is required.", f"{prefix}description")
        description = product.name
    quantity = parse_decimal(data.get("quantity"), f"{prefix}quantity", ZERO, MAX_QUANTITY)
    if quantity <= 0:
        raise FieldError("must be more than zero.", f"{prefix}quantity")
    if quantity != quantity.quantize(Decimal("0.000001")):
        raise FieldError("has at most six decimals.", f"{prefix}quantity")
    raw_price = data.get("unit_price")
    if raw_price in (None, "") and product is not None:
        unit_price = product.unit_price
    else:
        unit_price = parse_money(raw_price, f"{prefix}unit_price", allow_zero=True)
    raw_rate = data.get("tax_rate")
    if raw_rate in (None, "") and product is not None:
        tax_rate = product.tax_rate
    else:
        tax_rate = parse_decimal(
            raw_rate if raw_rate not in (None, "") else "0", f"{prefix}tax_rate", ZERO, HUNDRED
        )
        if tax_rate != tax_rate.quantize(CENT):
            raise FieldError("has at most two decimals.", f"{prefix}tax_rate")
    subtotal, tax, total = line_amounts(quantity, unit_price, tax_rate)
    if total > Decimal("9999999999999999.99"):
        raise FieldError("makes the line too large.", f"{prefix}quantity")
    return {
        "product_id": product.id if product else None,
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_rate": tax_rate,
        "subtotal": subtotal,
        "tax": tax,
        "total": total,
    }


def _retotal(document: Quotation | Invoice) -> None:
    lines = document.lines
    document.subtotal = sum((line.subtotal for line in lines), ZERO)
    document.tax_total = sum((line.tax for line in lines), ZERO)
    document.total = sum((line.total for line in lines), ZERO)


def _client(client_id: Any) -> Client:
    """A client the actor may see (the query is row-scoped), else 404 / 422."""
    pk = parse_id(client_id, "client_id")
    client = db.session.scalar(select(Client).where(Client.id == pk))
    if client is None:
        raise FieldError("is not a client you can bill.", "client_id")
    return client


def _lines_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    lines = data.get("lines") or []
    if not isinstance(lines, list) or not all(isinstance(line, Mapping) for line in lines):
        raise FieldError("must be a list of lines.", "lines")
    return [clean_line(line, i) for i, line in enumerate(lines)]


# ---- quotations -------------------------------------------------------------------------------

QUOTATION_MOVES = {
    "draft": ("sent", "expired"),
    "sent": ("accepted", "rejected", "expired"),
    "accepted": (),
    "rejected": (),
    "expired": (),
}


def create_quotation(data: Mapping[str, Any], today: date | None = None) -> Quotation:
    """A draft quotation with its lines (all checked first), numbered ``Q-YYYY-NNNNN``."""
    today = today or _today()
    client = _client(data.get("client_id"))
    valid_until = _a_date(data.get("valid_until"), "valid_until")
    if valid_until < today:
        raise FieldError(f"{valid_until} is in the past (today is {today}).", "valid_until")
    notes = clean_text(data.get("notes"), "notes", 4000)
    lines = _lines_of(data)
    number = next_number("quotation", today.year)
    quotation = Quotation(
        number=f"Q-{today.year}-{number:05d}",
        client_id=client.id,
        issue_date=today,
        valid_until=valid_until,
        status="draft",
        notes=notes,
        created_by_id=_actor_id(),
        lines=[QuotationLine(**line) for line in lines],
    )
    _retotal(quotation)
    db.session.add(quotation)
    db.session.flush()
    record_event("created", quotation, f"{quotation.number} for {client.name}: {quotation.total}")
    return quotation


def get_quotation(pk: int, lock: bool = False) -> Quotation:
    query = select(Quotation).where(Quotation.id == pk)
    if lock:
        query = query.with_for_update(of=Quotation).execution_options(populate_existing=True)
    quotation = db.session.scalar(query)
    if quotation is None:
        raise NotFound("no such quotation.")
    return quotation


def add_quotation_line(quotation: Quotation, data: Mapping[str, Any]) -> QuotationLine:
    if quotation.status != "draft":
        raise ConflictError(
            f"{quotation.number} is {quotation.status}; only a draft's lines change.", "status"
        )
    line = QuotationLine(**clean_line(data))
    quotation.lines.append(line)
    _retotal(quotation)
    db.session.flush()
    return line


def remove_quotation_line(quotation: Quotation, line_id: int) -> None:
    if quotation.status != "draft":
        raise ConflictError(
            f"{quotation.number} is {quotation.status}; only a draft's lines change.", "status"
        )
    line = next((line for line in quotation.lines if line.id == line_id), None)
    if line is None:
        raise NotFound("no such line.")
    quotation.lines.remove(line)
    _retotal(quotation)


def move_quotation(pk: int, to: str, today: date | None = None) -> Quotation:
    """Send, accept or reject a quotation; 409 naming the allowed moves otherwise."""
    today = today or _today()
    quotation = get_quotation(pk, lock=True)
    allowed = [s for s in QUOTATION_MOVES[quotation.status] if s != "expired"]
    if to not in allowed:
        raise ConflictError(
            f"{quotation.number} is {quotation.status}; it can move to "
            f"{', '.join(allowed) or 'nothing'}, not {to}.",
            "status",
        )
    if to == "sent" and not quotation.lines:
        raise ConflictError(f"{quotation.number} has no lines to quote.", "lines")
    if to == "accepted" and quotation.valid_until < today:
        raise ConflictError(
            f"{quotation.number} was valid until {quotation.valid_until}; it cannot be accepted.",
            "valid_until",
        )
    before = quotation.status
    quotation.status = to
    record_event("status", quotation, f"{quotation.number}: {before} → {to}")
    return quotation


def convert_quotation(pk: int, due_date: Any = None, today: date | None = None) -> Invoice:
    """Turn an accepted quotation into a draft invoice with the same lines (once)."""
    today = today or _today()
    quotation = get_quotation(pk, lock=True)
    if quotation.invoice_id is not None:
        raise ConflictError(
            f"{quotation.number} was already converted to an invoice.",
            "invoice_id",
            {"type": "invoice", "id": quotation.invoice_id},
        )
    if quotation.status != "accepted":
        raise ConflictError(
            f"{quotation.number} is {quotation.status}; only an accepted quotation becomes an "
            "invoice.",
            "status",
        )
    due = _a_date(due_date, "due_date", required=False) or today + _payment_terms()
    invoice = Invoice(
        client_id=quotation.client_id,
        due_date=due,
        status="draft",
        notes=quotation.notes,
        quotation_id=quotation.id,
        created_by_id=_actor_id(),
        lines=[
            InvoiceLine(
                product_id=line.product_id,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                tax_rate=line.tax_rate,
                subtotal=line.subtotal,
                tax=line.tax,
                total=line.total,
            )
            for line in quotation.lines
        ],
    )
    _retotal(invoice)
    db.session.add(invoice)
    db.session.flush()
    quotation.invoice_id = invoice.id
    record_event("converted", quotation, f"{quotation.number} → draft invoice #{invoice.id}")
    return invoice


def _payment_terms():
    from datetime import timedelta

    from flask import current_app

    return timedelta(days=int(current_app.config.get("CRM_INVOICE_PAYMENT_DAYS", 30)))


# ---- invoices ---------------------------------------------------------------------------------


def create_invoice(data: Mapping[str, Any], today: date | None = None) -> Invoice:
    """A draft invoice with its lines (all checked first); numbered when issued."""
    today = today or _today()
    client = _client(data.get("client_id"))
    due = _a_date(data.get("due_date"), "due_date", required=False) or today + _payment_terms()
    notes = clean_text(data.get("notes"), "notes", 4000)
    lines = _lines_of(data)
    invoice = Invoice(
        client_id=client.id,
        due_date=due,
        status="draft",
        notes=notes,
        created_by_id=_actor_id(),
        lines=[InvoiceLine(**line) for line in lines],
    )
    _retotal(invoice)
    db.session.add(invoice)
    db.session.flush()
    record_event("created", invoice, f"draft invoice for {client.name}: {invoice.total}")
    return invoice


def get_invoice(pk: int, lock: bool = False) -> Invoice:
    query = select(Invoice).where(Invoice.id == pk)
    if lock:
        query = query.with_for_update(of=Invoice).execution_options(populate_existing=True)
    invoice = db.session.scalar(query)
    if invoice is None:
        raise NotFound("no such invoice.")
    return invoice


def _draft_only(invoice: Invoice) -> None:
    if invoice.status != "draft":
        raise ConflictError(
            f"{invoice!r} is {invoice.status}; the lines of an issued invoice cannot change.",
            "status",
        )


def add_invoice_line(invoice: Invoice, data: Mapping[str, Any]) -> InvoiceLine:
    _draft_only(invoice)
    line = InvoiceLine(**clean_line(data))
    invoice.lines.append(line)
    _retotal(invoice)
    db.session.flush()
    return line


def remove_invoice_line(invoice: Invoice, line_id: int) -> None:
    _draft_only(invoice)
    line = next((line for line in invoice.lines if line.id == line_id), None)
    if line is None:
        raise NotFound("no such line.")
    invoice.lines.remove(line)
    _retotal(invoice)


def issue_invoice(pk: int, issue_date: Any = None, today: date | None = None) -> Invoice:
    """Number a draft invoice (``INV-YYYY-NNNNNN``, consecutive) and post it to the ledger."""
    today = today or _today()
    invoice = get_invoice(pk, lock=True)
    if invoice.status != "draft":
        raise ConflictError(
            f"{invoice!r} is {invoice.status}; only a draft can be issued.", "status"
        )
    if not invoice.lines or invoice.total <= 0:
        raise ConflictError("an invoice needs at least one line with an amount.", "lines")
    issued_on = _a_date(issue_date, "issue_date", required=False) or today
    if issued_on > today:
        raise FieldError(f"{issued_on} is in the future (today is {today}).", "issue_date")
    if invoice.due_date < issued_on:
        raise FieldError(f"{invoice.due_date} is before the issue date {issued_on}.", "due_date")
    number = next_number("invoice", issued_on.year)
    invoice.number = f"INV-{issued_on.year}-{number:06d}"
    invoice.issue_date = issued_on
    invoice.status = "issued"
    entry = ledger.post(
        issued_on,
        f"Invoice {invoice.number}",
        [
            ledger.debit(ledger.INVOICES_RECEIVABLE, invoice.total),
            ledger.credit(ledger.SALES_INCOME, invoice.subtotal),
            ledger.credit(ledger.TAX_PAYABLE, invoice.tax_total),
        ],
        invoice,
    )
    db.session.flush()
    invoice.issue_entry_id = entry.id
    record_event("issued", invoice, f"{invoice.number}: {invoice.total}")
    return invoice


def void_invoice(pk: int, reason: str | None, today: date | None = None) -> Invoice:
    """Void an invoice nothing was paid on; an issued one has its issue entry reversed."""
    today = today or _today()
    invoice = get_invoice(pk, lock=True)
    if invoice.status in ("void", "paid") or invoice.amount_paid > 0:
        raise ConflictError(
            f"{invoice!r} is {invoice.status} with {invoice.amount_paid} paid; only an invoice "
            "nothing was paid on can be voided.",
            "status",
        )
    reason = clean_text(reason, "reason", 300, required=True)
    if invoice.issue_entry_id is not None:
        ledger.reverse(invoice.issue_entry_id, max(today, invoice.issue_date), reason)
    before = invoice.status
    invoice.status = "void"
    record_event("voided", invoice, f"{invoice!r}: {before} → void ({reason})")
    return invoice


def record_payment(pk: int, data: Mapping[str, Any], today: date | None = None) -> Payment:
    """Money received against an issued invoice. Refused, with nothing written, when the amount
    is not a positive amount in whole cents or exceeds the balance due. The invoice row is
    locked first, so two payments at once cannot together overpay."""
    today = today or _today()
    amount = parse_money(data.get("amount"), "amount")
    method = parse_choice(data.get("method") or "bank_transfer", "method", PAYMENT_METHODS)
    reference = clean_text(data.get("reference"), "reference", 100)
    paid_on = _a_date(data.get("paid_on"), "paid_on", required=False) or today
    if paid_on > today:
        raise FieldError(f"{paid_on} is in the future (today is {today}).", "paid_on")
    invoice = get_invoice(pk, lock=True)
    if invoice.status not in OPEN_INVOICE_STATUSES:
        raise ConflictError(
            f"{invoice!r} is {invoice.status}; payments are recorded on issued invoices that "
            "are not fully paid.",
            "status",
        )
    if paid_on < invoice.issue_date:
        raise FieldError(
            f"{paid_on} is before the invoice was issued on {invoice.issue_date}.", "paid_on"
        )
    balance = invoice.balance_due
    if amount > balance:
        raise FieldError(
            f"{amount} is more than the balance due of {balance} on {invoice.number}; "
            f"record at most {balance}.",
            "amount",
        )
    payment = Payment(
        invoice_id=invoice.id,
        amount=amount,
        method=method,
        reference=reference,
        paid_on=paid_on,
        recorded_by_id=_actor_id(),
    )
    db.session.add(payment)
    db.session.flush()
    entry = ledger.post(
        paid_on,
        f"Payment on {invoice.number}",
        [ledger.debit(ledger.CASH, amount), ledger.credit(ledger.INVOICES_RECEIVABLE, amount)],
        payment,
    )
    db.session.flush()
    payment.journal_entry_id = entry.id
    invoice.amount_paid = invoice.amount_paid + amount
    # An overdue invoice paid in part is partially paid again; the daily job marks it overdue
    # once more while its due date is past (its client is reminded once per invoice).
    invoice.status = "paid" if invoice.amount_paid == invoice.total else "partially_paid"
    record_event(
        "payment", invoice, f"{invoice.number}: {amount} received, balance {invoice.balance_due}"
    )
    return payment


def refund_payment(payment_id: int, reason: str, today: date | None = None):
    """Money paid back on a payment: its ledger entry is reversed and the invoice owes that
    amount again (issued, or partially paid). Refused when the entry was already reversed."""
    today = today or _today()
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.journal_entry_id is None:
        raise NotFound("no such payment.")
    invoice = get_invoice(payment.invoice_id, lock=True)
    entry = ledger.reverse(payment.journal_entry_id, max(today, payment.paid_on), reason)
    invoice.amount_paid = invoice.amount_paid - payment.amount
    invoice.status = "issued" if invoice.amount_paid == 0 else "partially_paid"
    record_event(
        "refund",
        invoice,
        f"{invoice.number}: {payment.amount} refunded ({reason}), balance {invoice.balance_due}",
    )
    return entry


# ---- contracts --------------------------------------------------------------------------------

CONTRACT_MOVES = {
    "draft": ("active", "terminated"),
    "active": ("expired", "terminated"),
    "expired": (),
    "terminated": (),
}


def prepare_contract(contract: Contract) -> Contract:
    """Clean and check a contract before it is saved (screen and API)."""
    contract.title = clean_text(contract.title, "title", 200, required=True)
    contract.terms = clean_text(contract.terms, "terms", 20000)
    if contract.client_id is None and contract.client is not None:
        contract.client_id = contract.client.id
    _client(contract.client_id)
    contract.value = parse_money(
        contract.value if contract.value is not None else "0", "value", allow_zero=True
    )
    contract.start_date = _a_date(contract.start_date, "start_date")
    contract.end_date = _a_date(contract.end_date, "end_date", required=False)
    contract.renewal_date = _a_date(contract.renewal_date, "renewal_date", required=False)
    if contract.end_date is not None and contract.end_date < contract.start_date:
        raise FieldError(f"{contract.end_date} is before the start date.", "end_date")
    if contract.renewal_date is not None and contract.renewal_date < contract.start_date:
        raise FieldError(f"{contract.renewal_date} is before the start date.", "renewal_date")
    contract.status = parse_choice(contract.status or "draft", "status", CONTRACT_STATUSES)
    if contract.status == "active" and contract.document_id is None:
        raise ConflictError("a contract becomes active once its signed file is uploaded.", "status")
    if contract.created_by_id is None:
        contract.created_by_id = _actor_id()
    return contract


def get_contract(pk: int) -> Contract:
    contract = db.session.scalar(select(Contract).where(Contract.id == pk))
    if contract is None:
        raise NotFound("no such contract.")
    return contract


def attach_signed_file(pk: int, filename: str | None, data: bytes) -> Contract:
    """Store the signed contract as a ``contract`` document of the client and link it."""
    from app.documents.services import find_owner, upload_document

    contract = get_contract(pk)
    document = upload_document(find_owner(client_id=contract.client_id), "contract", filename, data)
    db.session.flush()
    contract.document_id = document.id
    record_event("signed file", contract, f"{contract.title}: {document.original_name}")
    return contract


def move_contract(pk: int, to: str) -> Contract:
    contract = get_contract(pk)
    allowed = CONTRACT_MOVES[contract.status]
    if to not in allowed:
        raise ConflictError(
            f"the contract is {contract.status}; it can move to {', '.join(allowed) or 'nothing'}"
            f", not {to}.",
            "status",
        )
    if to == "active" and contract.document_id is None:
        raise ConflictError("upload the signed file before activating the contract.", "document")
    before = contract.status
    contract.status = to
    record_event("status", contract, f"{contract.title}: {before} → {to}")
    return contract
