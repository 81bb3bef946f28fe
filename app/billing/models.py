"""Billing desk records: products and services, quotations, invoices and their payments,
contracts. Every client-owned row is visible exactly where its client is (agents their own
clients, managers their branch)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.documents.models import Document
from app.leads.models import _one_of
from app.security.scoping import scoped

Money = Numeric(18, 2)
Quantity = Numeric(18, 6)
Percent = Numeric(5, 2)
ZERO = Decimal("0.00")

PRODUCT_KINDS = ("product", "service")
QUOTATION_STATUSES = ("draft", "sent", "accepted", "rejected", "expired")
INVOICE_STATUSES = ("draft", "issued", "partially_paid", "paid", "overdue", "void")
OPEN_INVOICE_STATUSES = ("issued", "partially_paid", "overdue")
"""Issued and not fully paid: payments may be recorded."""
PAYMENT_METHODS = ("bank_transfer", "card", "cash", "cheque", "upi")
CONTRACT_STATUSES = ("draft", "active", "expired", "terminated")


class NumberSequence(Model):
    """The next number of a yearly document series (``invoice:2026``): one row per series and
    year, locked while a number is taken so numbers are consecutive and never repeat."""

    __tablename__ = "billing_number_sequence"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class BillingProduct(Model):
    __tablename__ = "billing_product"
    __table_args__ = (
        CheckConstraint(_one_of("kind", PRODUCT_KINDS), name="ck_billing_product_kind"),
        CheckConstraint("unit_price >= 0", name="ck_billing_product_price"),
        CheckConstraint("tax_rate >= 0 AND tax_rate <= 100", name="ck_billing_product_tax"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(150))
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="service")
    description: Mapped[str | None] = mapped_column(Text)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    tax_rate: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0.00"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.sku} {self.name}"


@scoped
class Quotation(Model):
    __tablename__ = "quotation"
    __table_args__ = (
        CheckConstraint(_one_of("status", QUOTATION_STATUSES), name="ck_quotation_status"),
        Index("ix_quotation_client", "client_id"),
        Index("ix_quotation_status", "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    """``Q-2026-00001``: given when the quotation is created."""
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    issue_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    notes: Mapped[str | None] = mapped_column(Text)
    subtotal: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    total: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoice.id", name="fk_quotation_invoice", use_alter=False)
    )
    """The invoice it became (set once, by the conversion)."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    created_by: Mapped[User | None] = relationship(User)
    lines: Mapped[list[QuotationLine]] = relationship(
        back_populates="quotation", order_by="QuotationLine.id", cascade="all, delete-orphan"
    )
    invoice: Mapped[Invoice | None] = relationship(foreign_keys=[invoice_id])

    __scope__ = _through_client(lambda: Quotation.client_id)

    def __repr__(self) -> str:
        return self.number or f"quotation #{self.id}"


def _through_parent(parent, column):
    """Scope rules for rows of a quotation or invoice: visible where their parent is."""

    def rule(kind: str):
        return lambda actor: column().in_(select(parent.id).where(parent.__scope__[kind](actor)))

    return {kind: rule(kind) for kind in parent.__scope__}


class _LineColumns:
    """What a quotation line and an invoice line both hold."""

    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    tax_rate: Mapped[Decimal] = mapped_column(Percent)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)


def _line_checks(table: str) -> tuple:
    return (
        CheckConstraint("quantity > 0", name=f"ck_{table}_quantity"),
        CheckConstraint("unit_price >= 0", name=f"ck_{table}_price"),
        CheckConstraint("tax_rate >= 0 AND tax_rate <= 100", name=f"ck_{table}_tax_rate"),
        CheckConstraint(
            "round((subtotal + tax) * 100) = round(total * 100)", name=f"ck_{table}_total"
        ),
    )


@scoped
class QuotationLine(_LineColumns, Model):
    __tablename__ = "quotation_line"
    __table_args__ = _line_checks("quotation_line")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quotation_id: Mapped[int] = mapped_column(ForeignKey("quotation.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("billing_product.id"))

    quotation: Mapped[Quotation] = relationship(back_populates="lines")
    product: Mapped[BillingProduct | None] = relationship(BillingProduct)

    __scope__ = _through_parent(Quotation, lambda: QuotationLine.quotation_id)


@scoped
class Invoice(Model):
    __tablename__ = "invoice"
    __table_args__ = (
        CheckConstraint(_one_of("status", INVOICE_STATUSES), name="ck_invoice_status"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= total", name="ck_invoice_amount_paid"),
        CheckConstraint(
            "status = 'draft' OR number IS NOT NULL", name="ck_invoice_number_when_issued"
        ),
        Index("ix_invoice_client", "client_id"),
        Index("ix_invoice_status_due", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    """``INV-2026-000001``: given when the invoice is issued (none while it is a draft)."""
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    notes: Mapped[str | None] = mapped_column(Text)
    subtotal: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    total: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    amount_paid: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    quotation_id: Mapped[int | None] = mapped_column(Integer)
    """The quotation it came from (the quotation holds the foreign key: no cycle)."""
    issue_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_invoice_issue_entry")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    created_by: Mapped[User | None] = relationship(User)
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.id", cascade="all, delete-orphan"
    )
    payments: Mapped[list[Payment]] = relationship(back_populates="invoice", order_by="Payment.id")

    __scope__ = _through_client(lambda: Invoice.client_id)

    @property
    def balance_due(self) -> Decimal:
        return (self.total or ZERO) - (self.amount_paid or ZERO)

    def __repr__(self) -> str:
        return self.number or f"draft invoice #{self.id}"


def _through_invoice(column):
    return _through_parent(Invoice, column)


@scoped
class InvoiceLine(_LineColumns, Model):
    __tablename__ = "invoice_line"
    __table_args__ = _line_checks("invoice_line")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("billing_product.id"))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    product: Mapped[BillingProduct | None] = relationship(BillingProduct)

    __scope__ = _through_invoice(lambda: InvoiceLine.invoice_id)


@scoped
class Payment(Model):
    __tablename__ = "billing_payment"
    __table_args__ = (
        CheckConstraint(_one_of("method", PAYMENT_METHODS), name="ck_billing_payment_method"),
        CheckConstraint("amount > 0", name="ck_billing_payment_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[str] = mapped_column(String(20), default="bank_transfer")
    reference: Mapped[str | None] = mapped_column(String(100))
    paid_on: Mapped[date] = mapped_column(Date)
    journal_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_billing_payment_entry")
    )
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
    recorded_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_invoice(lambda: Payment.invoice_id)

    def __repr__(self) -> str:
        return f"{self.amount} on {self.paid_on}"


@scoped
class Contract(Model):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint(_one_of("status", CONTRACT_STATUSES), name="ck_contract_status"),
        CheckConstraint("value >= 0", name="ck_contract_value"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="ck_contract_dates"),
        Index("ix_contract_client", "client_id"),
        Index("ix_contract_renewal", "status", "renewal_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    title: Mapped[str] = mapped_column(String(200))
    terms: Mapped[str | None] = mapped_column(Text)
    value: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    renewal_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("document.id", name="fk_contract_document")
    )
    """The signed contract (a ``contract`` document of the client)."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    document: Mapped[Document | None] = relationship(Document)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_client(lambda: Contract.client_id)

    def __repr__(self) -> str:
        return self.title
