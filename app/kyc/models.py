"""KYC cases (DOMAIN section 4): what a client must prove, who prepared it, who reviewed it."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.crypto import EncryptedText
from app.core.masking import mask
from app.core.types import UTCDateTime, utcnow
from app.documents.models import Document
from app.leads.models import _one_of
from app.security.scoping import scoped, through_parent

CASE_STATUSES = ("pending", "in_review", "verified", "rejected")
OPEN_CASE_STATUSES = ("pending", "in_review", "rejected")
EXPIRY_STAGES = ("30", "7", "expired")


@scoped
class KycCase(Model):
    """One attempt to verify a client: prepared (documents, identifiers), submitted, reviewed.
    A rejected case is corrected and submitted again; its events keep the whole story."""

    __tablename__ = "kyc_case"
    __table_args__ = (
        CheckConstraint(_one_of("status", CASE_STATUSES), name="ck_kyc_case_status"),
        CheckConstraint(
            "status <> 'rejected' OR rejection_reason IS NOT NULL",
            name="ck_kyc_case_rejection_reason",
        ),
        Index("ix_kyc_case_client", "client_id", "status"),
        Index("ix_kyc_case_queue", "status", "submitted_at"),
        Index("ix_kyc_case_reviewer", "reviewer_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # Identifiers as the client gave them for this case; checked, never trusted until approval.
    pan: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "pan"})
    aadhaar: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "aadhaar"})
    abn: Mapped[str | None] = mapped_column(String(20))
    acn: Mapped[str | None] = mapped_column(String(20))
    registration_number: Mapped[str | None] = mapped_column(String(50))
    bank_account: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "account"})
    ifsc: Mapped[str | None] = mapped_column(String(20))
    iban: Mapped[str | None] = mapped_column(String(42))
    check_results: Mapped[str | None] = mapped_column(Text)
    """JSON list of {"check", "ok", "message"}: the identifier checks as last run."""
    prepared_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    """The compliance officer the case waits with (any other may still review it)."""
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(Client)
    prepared_by: Mapped[User | None] = relationship(User, foreign_keys=[prepared_by_id])
    submitted_by: Mapped[User | None] = relationship(User, foreign_keys=[submitted_by_id])
    reviewer: Mapped[User | None] = relationship(User, foreign_keys=[reviewer_id])
    reviewed_by: Mapped[User | None] = relationship(User, foreign_keys=[reviewed_by_id])
    documents: Mapped[list[KycCaseDocument]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )
    events: Mapped[list[KycCaseEvent]] = relationship(
        back_populates="case", order_by="KycCaseEvent.id", cascade="all, delete-orphan"
    )

    __scope__ = _through_client(lambda: KycCase.client_id)

    @property
    def pan_masked(self) -> str:
        return mask("pan", self.pan)

    @property
    def aadhaar_masked(self) -> str:
        return mask("aadhaar", self.aadhaar)

    @property
    def bank_account_masked(self) -> str:
        return mask("account", self.bank_account)

    def __repr__(self) -> str:
        return f"KYC case #{self.id}"


def _through_case(column):
    """Scope rules for rows of a case: visible where the case's client is."""
    return through_parent(KycCase, column)


@scoped
class KycCaseDocument(Model):
    """The documents a case was submitted with (the versions current at submission)."""

    __tablename__ = "kyc_case_document"
    __table_args__ = (UniqueConstraint("case_id", "document_id", name="uq_kyc_case_document"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("kyc_case.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), index=True)
    requirement: Mapped[str] = mapped_column(String(40))

    case: Mapped[KycCase] = relationship(back_populates="documents")
    document: Mapped[Document] = relationship(Document)

    __scope__ = _through_case(lambda: KycCaseDocument.case_id)


@scoped
class KycCaseEvent(Model):
    """One step of a case's history: who, when, from which status to which, and why."""

    __tablename__ = "kyc_case_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("kyc_case.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(120))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[KycCase] = relationship(back_populates="events")

    __scope__ = _through_case(lambda: KycCaseEvent.case_id)

    def __repr__(self) -> str:
        return f"{self.from_status or '-'} → {self.to_status}"


class KycExpiryAlert(Model):
    """That a document's expiry stage (30 days, 7 days, expired) was acted on: the unique key
    makes the daily job do each stage once, however often it runs."""

    __tablename__ = "kyc_expiry_alert"
    __table_args__ = (
        CheckConstraint(_one_of("stage", EXPIRY_STAGES), name="ck_kyc_expiry_alert_stage"),
        UniqueConstraint("document_id", "stage", name="uq_kyc_expiry_alert"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"))
    stage: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
