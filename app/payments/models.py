"""Payment links (intents) sent to clients, the provider events received about them, and the
credits parked for review when an event cannot be applied.

An intent belongs to one branch (the invoice's client's, the loan's, the wallet's client's): it
is visible where that branch is, and to whoever created it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped, through_parent

Money = Numeric(18, 2)

PURPOSES = ("invoice", "instalment", "wallet_top_up")
INTENT_STATUSES = ("pending", "succeeded", "failed", "refunded", "parked")
EVENT_TYPES = ("succeeded", "failed", "refunded")
CREDIT_STATUSES = ("open", "resolved")
CREDIT_RESOLUTIONS = ("applied", "refunded")
"""A parked credit is resolved by applying it to an invoice or loan of the same client (through
that desk's payment service), or by recording the refund made at the provider."""


@scoped
class PaymentIntent(Model):
    """One payment link: what it pays, how much, and what became of it."""

    __tablename__ = "payment_intent"
    __table_args__ = (
        CheckConstraint(_one_of("purpose", PURPOSES), name="ck_payment_intent_purpose"),
        CheckConstraint(_one_of("status", INTENT_STATUSES), name="ck_payment_intent_status"),
        CheckConstraint("amount > 0", name="ck_payment_intent_amount"),
        UniqueConstraint("provider", "provider_reference", name="uq_payment_intent_reference"),
        Index("ix_payment_intent_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(30))
    provider_reference: Mapped[str | None] = mapped_column(String(120))
    """The provider's id of the session or link; events name it."""
    url: Mapped[str | None] = mapped_column(String(500))
    purpose: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("loan_application.id"), index=True
    )
    wallet_id: Mapped[int | None] = mapped_column(ForeignKey("wallet.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payment.id"))
    """The invoice payment the success recorded."""
    repayment_id: Mapped[int | None] = mapped_column(ForeignKey("loan_repayment.id"))
    """The loan repayment the success recorded."""
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entry.id"))
    """The entry that posted the money."""
    refund_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entry.id"))
    """The reversing entry of a refund."""
    note: Mapped[str | None] = mapped_column(String(500))
    """Why the intent failed or was parked."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship(User)

    __scope__ = {
        "branch": lambda actor: PaymentIntent.branch_id == actor.branch_id,
        "own": lambda actor: PaymentIntent.created_by_id == actor.user_id,
        "bdm": lambda actor: PaymentIntent.created_by_id == actor.user_id,
    }

    @property
    def pays(self) -> str:
        if self.purpose == "invoice":
            return f"invoice #{self.invoice_id}"
        if self.purpose == "instalment":
            return f"instalment of loan application #{self.application_id}"
        return f"top-up of wallet #{self.wallet_id}"

    def __repr__(self) -> str:
        return f"payment link #{self.id} ({self.amount} {self.currency}, {self.pays})"


@scoped
class PaymentEvent(Model):
    """One event a provider sent, kept once per (provider, event id): a replay finds it and
    changes nothing."""

    __tablename__ = "payment_event"
    __table_args__ = (
        CheckConstraint(_one_of("event_type", EVENT_TYPES), name="ck_payment_event_type"),
        UniqueConstraint("provider", "event_id", name="uq_payment_event_provider_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(30))
    event_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(120))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("payment_intent.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(300))
    """What the event did: paid, marked failed, refunded, parked, or why it changed nothing."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    intent: Mapped[PaymentIntent | None] = relationship(PaymentIntent)

    __scope__ = through_parent(
        PaymentIntent, lambda: PaymentEvent.intent_id, ("branch", "own", "bdm")
    )

    def __repr__(self) -> str:
        return f"{self.provider} event {self.event_id} ({self.event_type})"


@scoped
class PaymentCredit(Model):
    """Money a provider collected that its desk's service refused (an overpayment, a paid or
    void invoice, a repaid loan): parked here until staff refund or apply it."""

    __tablename__ = "payment_credit"
    __table_args__ = (
        CheckConstraint(_one_of("status", CREDIT_STATUSES), name="ck_payment_credit_status"),
        CheckConstraint("amount > 0", name="ck_payment_credit_amount"),
        CheckConstraint(
            "resolution IS NULL OR resolution IN ('applied', 'refunded')",
            name="ck_payment_credit_resolution",
        ),
        Index("ix_payment_credit_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("payment_intent.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("payment_event.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolution_note: Mapped[str | None] = mapped_column(String(500))
    """The refund's reference at the provider, or what the credit was applied to."""
    applied_payment_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payment.id"))
    applied_repayment_id: Mapped[int | None] = mapped_column(ForeignKey("loan_repayment.id"))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    intent: Mapped[PaymentIntent] = relationship(PaymentIntent)
    resolved_by: Mapped[User | None] = relationship(User)

    __scope__ = through_parent(
        PaymentIntent, lambda: PaymentCredit.intent_id, ("branch", "own", "bdm")
    )

    def __repr__(self) -> str:
        return f"parked credit #{self.id} ({self.amount} {self.currency})"
