"""Lending desk records. Every row of an application (parties, notes, fees, instalments,
repayments, arrears history) is visible exactly where its application is: a broker sees the
applications they introduced, a BDM those they are BDM of, a manager their branch's."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    exists,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client
from app.core.crypto import EncryptedText
from app.core.masking import mask
from app.core.types import UTCDateTime, utcnow
from app.documents.models import Document
from app.leads.models import _one_of
from app.ledger.models import JournalEntry
from app.org.models import Branch
from app.security.scoping import scoped

Money = Numeric(18, 2)
Rate = Numeric(7, 4)
"""Annual interest rate in percent, e.g. 5.5000."""

LOAN_TYPES = ("residential", "commercial", "personal", "business")
FREQUENCIES = ("weekly", "fortnightly", "monthly")
APPLICATION_TYPES = ("purchase", "refinance", "construction", "equity_release", "working_capital")
STAGES = (
    "inquiry",
    "application",
    "assessment",
    "approved",
    "settled",
    "closed",
    "declined",
    "withdrawn",
)
OPEN_STAGES = ("inquiry", "application", "assessment", "approved")
"""Stages before settlement: the application is still being worked on."""
PARTY_ROLES = ("borrower", "guarantor")
PARTY_TYPES = ("individual", "company")
MARITAL_STATUSES = ("single", "married", "de_facto", "separated", "divorced", "widowed")
RESIDENCIES = ("citizen", "permanent_resident", "temporary_visa", "non_resident")
EMPLOYMENT_TYPES = ("full_time", "part_time", "casual", "self_employed", "unemployed", "retired")
FEE_TYPES = ("application", "valuation", "legal", "settlement", "broker", "other")
FEE_STATUSES = ("waiting", "paid")
INSTALMENT_STATUSES = ("scheduled", "partial", "paid", "late")
PAYMENT_METHODS = ("bank_transfer", "direct_debit", "card", "cheque", "cash")
ARREARS_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
EDITABLE_COLUMNS = [
    "amount",
    "term_months",
    "interest_rate",
    "purpose",
    "estimated_settlement_date",
    "signed_by",
    "signature_date",
    "valuer_company",
    "valuer_contact",
    "valuer_phone",
    "valuer_email",
    "qs_company",
    "qs_contact",
    "qs_phone",
    "qs_email",
]
"""What an application's edit screen and API change (through ``services.prepare_edit``)."""


class LoanProduct(Model):
    __tablename__ = "loan_product"
    __table_args__ = (
        CheckConstraint(_one_of("loan_type", LOAN_TYPES), name="ck_loan_product_type"),
        CheckConstraint("min_rate >= 0 AND max_rate >= min_rate", name="ck_loan_product_rates"),
        CheckConstraint(
            "min_term_months >= 1 AND max_term_months >= min_term_months",
            name="ck_loan_product_terms",
        ),
        CheckConstraint(
            "min_amount > 0 AND max_amount >= min_amount", name="ck_loan_product_amounts"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    loan_type: Mapped[str] = mapped_column(String(20))
    min_rate: Mapped[Decimal] = mapped_column(Rate)
    max_rate: Mapped[Decimal] = mapped_column(Rate)
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    min_amount: Mapped[Decimal] = mapped_column(Money)
    max_amount: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    fee_templates: Mapped[list[LoanProductFee]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="LoanProductFee.id"
    )

    def __repr__(self) -> str:
        return self.name


class LoanProductFee(Model):
    """A fee every application of the product is charged when it is created."""

    __tablename__ = "loan_product_fee"
    __table_args__ = (
        CheckConstraint(_one_of("fee_type", FEE_TYPES), name="ck_loan_product_fee_type"),
        CheckConstraint("amount > 0", name="ck_loan_product_fee_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_product.id"), index=True)
    fee_type: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)

    product: Mapped[LoanProduct] = relationship(back_populates="fee_templates")

    def __repr__(self) -> str:
        return f"{self.fee_type} {self.amount}"


broker_bdm = Table(
    "broker_bdm",
    Model.metadata,
    Column("broker_id", ForeignKey("broker.id"), primary_key=True),
    Column("user_id", ForeignKey("ab_user.id"), primary_key=True, index=True),
)


@scoped
class Broker(Model):
    """An introducer of loan applications: a company, its contact, the BDMs it works with."""

    __tablename__ = "broker"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    """The broker's own sign-in (role Broker), if they use FinCRM themselves."""
    commission_account: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "account"})
    """Bank account commission is paid into (stored encrypted, shown masked)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch] = relationship(Branch)
    user: Mapped[User | None] = relationship(User, foreign_keys=[user_id])
    bdms: Mapped[list[User]] = relationship(User, secondary=broker_bdm)

    __scope__ = {
        "branch": lambda actor: Broker.branch_id == actor.branch_id,
        "broker": lambda actor: Broker.user_id == actor.user_id,
        "bdm": lambda actor: exists(
            select(broker_bdm.c.broker_id).where(
                broker_bdm.c.broker_id == Broker.id, broker_bdm.c.user_id == actor.user_id
            )
        ),
    }

    @property
    def commission_account_masked(self) -> str:
        return mask("account", self.commission_account)

    def __repr__(self) -> str:
        return f"{self.company} ({self.contact_name})"


@scoped
class LoanApplication(Model):
    __tablename__ = "loan_application"
    __table_args__ = (
        CheckConstraint(_one_of("stage", STAGES), name="ck_loan_application_stage"),
        CheckConstraint(
            _one_of("repayment_frequency", FREQUENCIES), name="ck_loan_application_frequency"
        ),
        CheckConstraint(
            _one_of("application_type", APPLICATION_TYPES), name="ck_loan_application_type"
        ),
        CheckConstraint(
            _one_of("arrears_bucket", ARREARS_BUCKETS), name="ck_loan_application_bucket"
        ),
        CheckConstraint("amount > 0", name="ck_loan_application_amount"),
        CheckConstraint("term_months >= 1", name="ck_loan_application_term"),
        CheckConstraint("interest_rate >= 0", name="ck_loan_application_rate"),
        Index("ix_loan_application_stage", "stage", "stage_changed_at"),
        Index("ix_loan_application_bdm", "bdm_id", "stage"),
        Index("ix_loan_application_broker", "broker_id", "stage"),
        Index("ix_loan_application_client", "client_id"),
        Index("ix_loan_application_bucket", "arrears_bucket", "stage"),
        Index("ix_loan_application_amount_id", "amount", "id"),
        Index("ix_loan_application_stage_changed_id", "stage_changed_at", "id"),
        # The application board: each stage's most recent moves, within a branch and per BDM.
        Index("ix_loan_application_branch_board", "branch_id", "stage", "stage_changed_at", "id"),
        Index("ix_loan_application_bdm_board", "bdm_id", "stage", "stage_changed_at", "id"),
        # Every order the list offers within a branch's rows, the default (key) one included.
        Index("ix_loan_application_branch_id_id", "branch_id", "id"),
        *(
            Index(f"ix_loan_application_branch_{name}_id", "branch_id", column, "id")
            for name, column in (
                ("reference", "reference"),
                ("stage", "stage"),
                ("amount", "amount"),
                ("stage_changed", "stage_changed_at"),
            )
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    """``LA-000123``: given when the application is first saved."""
    amount: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int] = mapped_column(Integer)
    interest_rate: Mapped[Decimal] = mapped_column(Rate)
    purpose: Mapped[str | None] = mapped_column(Text)
    repayment_frequency: Mapped[str] = mapped_column(String(12), default="monthly")
    application_type: Mapped[str] = mapped_column(String(20), default="purchase")
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_product.id"), index=True)
    estimated_settlement_date: Mapped[date | None] = mapped_column(Date)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    bdm_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"))
    broker_id: Mapped[int | None] = mapped_column(ForeignKey("broker.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    """The CRM client the application is for, when there is one (its timeline shows the loan)."""
    signed_by: Mapped[str | None] = mapped_column(String(200))
    signature_date: Mapped[date | None] = mapped_column(Date)
    # The signed PDF is the application's current ``signed_form`` document (versioned).
    valuer_company: Mapped[str | None] = mapped_column(String(200))
    valuer_contact: Mapped[str | None] = mapped_column(String(200))
    valuer_phone: Mapped[str | None] = mapped_column(String(20))
    valuer_email: Mapped[str | None] = mapped_column(String(254))
    qs_company: Mapped[str | None] = mapped_column(String(200))
    qs_contact: Mapped[str | None] = mapped_column(String(200))
    qs_phone: Mapped[str | None] = mapped_column(String(20))
    qs_email: Mapped[str | None] = mapped_column(String(254))
    stage: Mapped[str] = mapped_column(String(12), default="inquiry")
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_on: Mapped[date | None] = mapped_column(Date)
    instalment_amount: Mapped[Decimal | None] = mapped_column(Money)
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    arrears_bucket: Mapped[str] = mapped_column(String(8), default="current")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    product: Mapped[LoanProduct] = relationship(LoanProduct)
    branch: Mapped[Branch] = relationship(Branch)
    bdm: Mapped[User] = relationship(User, foreign_keys=[bdm_id])
    broker: Mapped[Broker | None] = relationship(Broker)
    client: Mapped[Client | None] = relationship(Client)
    created_by: Mapped[User | None] = relationship(User, foreign_keys=[created_by_id])
    parties: Mapped[list[LoanParty]] = relationship(
        back_populates="application", order_by="LoanParty.id", cascade="all, delete-orphan"
    )
    stage_events: Mapped[list[LoanStageEvent]] = relationship(
        back_populates="application", order_by="LoanStageEvent.id", cascade="all, delete-orphan"
    )

    __scope__ = {
        "branch": lambda actor: LoanApplication.branch_id == actor.branch_id,
        "bdm": lambda actor: LoanApplication.bdm_id == actor.user_id,
        "broker": lambda actor: exists(
            select(Broker.id)
            .where(Broker.id == LoanApplication.broker_id, Broker.user_id == actor.user_id)
            .correlate_except(Broker)
        ),
    }

    def __repr__(self) -> str:
        return self.reference or f"application #{self.id}"


def _through_application(column):
    """Scope rules for rows of an application: visible where the application is."""

    def rule(kind: str):
        return lambda actor: exists(
            select(LoanApplication.id)
            .where(LoanApplication.id == column(), LoanApplication.__scope__[kind](actor))
            .correlate_except(LoanApplication)
        )

    return {kind: rule(kind) for kind in LoanApplication.__scope__}


@scoped
class LoanStageEvent(Model):
    """One move of an application between stages: who, when, from, to, and why."""

    __tablename__ = "loan_stage_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(120))
    from_stage: Mapped[str | None] = mapped_column(String(12))
    to_stage: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)

    application: Mapped[LoanApplication] = relationship(back_populates="stage_events")

    __scope__ = _through_application(lambda: LoanStageEvent.application_id)

    def __repr__(self) -> str:
        return f"{self.from_stage or '-'} → {self.to_stage}"


@scoped
class LoanParty(Model):
    """A borrower or guarantor of an application: a person or a company."""

    __tablename__ = "loan_party"
    __table_args__ = (
        CheckConstraint(_one_of("role", PARTY_ROLES), name="ck_loan_party_role"),
        CheckConstraint(_one_of("party_type", PARTY_TYPES), name="ck_loan_party_type"),
        CheckConstraint(
            "(party_type = 'individual' AND first_name IS NOT NULL AND last_name IS NOT NULL)"
            " OR (party_type = 'company' AND company_name IS NOT NULL"
            " AND (abn IS NOT NULL OR acn IS NOT NULL))",
            name="ck_loan_party_identity",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    party_type: Mapped[str] = mapped_column(String(10))
    guarantees_party_id: Mapped[int | None] = mapped_column(
        ForeignKey("loan_party.id", name="fk_loan_party_guarantees")
    )
    """For a guarantor: the borrower whose debt they guarantee."""
    # A person
    title: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    marital_status: Mapped[str | None] = mapped_column(String(12))
    residency: Mapped[str | None] = mapped_column(String(20))
    dependants: Mapped[int | None] = mapped_column(Integer)
    employer: Mapped[str | None] = mapped_column(String(200))
    occupation: Mapped[str | None] = mapped_column(String(100))
    employment_type: Mapped[str | None] = mapped_column(String(20))
    years_employed: Mapped[int | None] = mapped_column(Integer)
    annual_income: Mapped[Decimal | None] = mapped_column(Money)
    monthly_expenses: Mapped[Decimal | None] = mapped_column(Money)
    tax_id: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "tax_id"})
    # A company
    company_name: Mapped[str | None] = mapped_column(String(200))
    abn: Mapped[str | None] = mapped_column(String(20))
    acn: Mapped[str | None] = mapped_column(String(20))
    directors: Mapped[str | None] = mapped_column(Text)
    """Director names, one per line."""
    # Both
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    total_assets: Mapped[Decimal | None] = mapped_column(Money)
    total_liabilities: Mapped[Decimal | None] = mapped_column(Money)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "account"})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    application: Mapped[LoanApplication] = relationship(back_populates="parties")
    guarantees: Mapped[LoanParty | None] = relationship(remote_side=[id])

    __scope__ = _through_application(lambda: LoanParty.application_id)

    @property
    def name(self) -> str:
        if self.party_type == "company":
            return self.company_name or ""
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def tax_id_masked(self) -> str:
        return mask("tax_id", self.tax_id)

    @property
    def bank_account_masked(self) -> str:
        return mask("account", self.bank_account)

    def __repr__(self) -> str:
        return f"{self.name} ({self.role})"


@scoped
class LoanNote(Model):
    __tablename__ = "loan_note"
    __table_args__ = (Index("ix_loan_note_remind", "remind_on", "reminded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    remind_on: Mapped[date | None] = mapped_column(Date)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    application: Mapped[LoanApplication] = relationship()
    author: Mapped[User | None] = relationship(User)

    __scope__ = _through_application(lambda: LoanNote.application_id)


@scoped
class LoanFee(Model):
    """A fee on an application: charged (posted) when added, ``paid`` when payment arrives."""

    __tablename__ = "loan_fee"
    __table_args__ = (
        CheckConstraint(_one_of("fee_type", FEE_TYPES), name="ck_loan_fee_type"),
        CheckConstraint(_one_of("status", FEE_STATUSES), name="ck_loan_fee_status"),
        CheckConstraint("amount > 0", name="ck_loan_fee_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), index=True)
    fee_type: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    invoice_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("document.id", name="fk_loan_fee_invoice_document")
    )
    charge_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_loan_fee_charge_entry")
    )
    payment_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_loan_fee_payment_entry")
    )
    paid_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    application: Mapped[LoanApplication] = relationship()
    invoice_document: Mapped[Document | None] = relationship(Document)
    charge_entry: Mapped[JournalEntry | None] = relationship(foreign_keys=[charge_entry_id])
    payment_entry: Mapped[JournalEntry | None] = relationship(foreign_keys=[payment_entry_id])

    __scope__ = _through_application(lambda: LoanFee.application_id)

    def __repr__(self) -> str:
        return f"{self.fee_type} fee {self.amount}"


@scoped
class LoanInstalment(Model):
    """One due date of a settled loan's schedule and how much of it has been paid."""

    __tablename__ = "loan_instalment"
    __table_args__ = (
        CheckConstraint(_one_of("status", INSTALMENT_STATUSES), name="ck_loan_instalment_status"),
        CheckConstraint(
            "principal >= 0 AND interest >= 0 AND paid_principal >= 0 AND paid_interest >= 0"
            " AND paid_principal <= principal AND paid_interest <= interest",
            name="ck_loan_instalment_amounts",
        ),
        UniqueConstraint("application_id", "number", name="uq_loan_instalment_number"),
        Index("ix_loan_instalment_due", "due_date", "status"),
        # The daily jobs read only what is still owed: a small slice of the schedules.
        Index(
            "ix_loan_instalment_unpaid_due",
            "due_date",
            "application_id",
            postgresql_where=text("status <> 'paid'"),
            sqlite_where=text("status <> 'paid'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"))
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    paid_principal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    paid_interest: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    paid_on: Mapped[date | None] = mapped_column(Date)
    """When the instalment was paid in full."""

    application: Mapped[LoanApplication] = relationship()

    __scope__ = _through_application(lambda: LoanInstalment.application_id)

    @property
    def paid(self) -> Decimal:
        return self.paid_principal + self.paid_interest

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.paid

    def __repr__(self) -> str:
        return f"#{self.number} due {self.due_date}"


@scoped
class LoanRepayment(Model):
    """Money received against a loan and how it was split between interest and principal."""

    __tablename__ = "loan_repayment"
    __table_args__ = (
        CheckConstraint(_one_of("method", PAYMENT_METHODS), name="ck_loan_repayment_method"),
        CheckConstraint("amount > 0", name="ck_loan_repayment_amount"),
        CheckConstraint(
            "round((interest_part + principal_part) * 100) = round(amount * 100)",
            name="ck_loan_repayment_allocated",
        ),
        Index("ix_loan_repayment_application", "application_id", "received_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(20), default="bank_transfer")
    reference: Mapped[str | None] = mapped_column(String(100))
    interest_part: Mapped[Decimal] = mapped_column(Money)
    principal_part: Mapped[Decimal] = mapped_column(Money)
    journal_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_loan_repayment_entry")
    )
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    application: Mapped[LoanApplication] = relationship()
    recorded_by: Mapped[User | None] = relationship(User)
    allocations: Mapped[list[LoanRepaymentAllocation]] = relationship(
        back_populates="repayment", cascade="all, delete-orphan"
    )
    journal_entry: Mapped[JournalEntry | None] = relationship()

    __scope__ = _through_application(lambda: LoanRepayment.application_id)


def _through_repayment(rule):
    return lambda actor: exists(
        select(LoanRepayment.id)
        .where(LoanRepayment.id == LoanRepaymentAllocation.repayment_id, rule(actor))
        .correlate_except(LoanRepayment)
    )


@scoped
class LoanRepaymentAllocation(Model):
    __tablename__ = "loan_repayment_allocation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repayment_id: Mapped[int] = mapped_column(ForeignKey("loan_repayment.id"), index=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("loan_instalment.id"), index=True)
    interest: Mapped[Decimal] = mapped_column(Money)
    principal: Mapped[Decimal] = mapped_column(Money)

    repayment: Mapped[LoanRepayment] = relationship(back_populates="allocations")
    instalment: Mapped[LoanInstalment] = relationship()

    __scope__ = {kind: _through_repayment(rule) for kind, rule in LoanRepayment.__scope__.items()}


@scoped
class LoanArrearsChange(Model):
    """A change of an application's arrears bucket, as the daily job found it."""

    __tablename__ = "loan_arrears_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_application.id"), index=True)
    changed_on: Mapped[date] = mapped_column(Date)
    from_bucket: Mapped[str] = mapped_column(String(8))
    to_bucket: Mapped[str] = mapped_column(String(8))
    days_past_due: Mapped[int] = mapped_column(Integer)

    application: Mapped[LoanApplication] = relationship()

    __scope__ = _through_application(lambda: LoanArrearsChange.application_id)
