"""Document (DOMAIN section 4): what was uploaded, for whom, where it is kept, which version."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    exists,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import Lead, _one_of
from app.security.scoping import scoped

DOC_TYPES = (
    "pan_card",
    "aadhaar",
    "passport",
    "director_identity",
    "address_proof",
    "bank_statement",
    "income_proof",
    "company_extract",
    "indicative_letter",
    "disbursement",
    "signed_form",
    "invoice",
    "contract",
    "other",
)


def _visible_owner(kind: str):
    """A document is visible where its owner (client, lead or loan application) is."""

    def criteria(actor):
        from app.lending.models import LoanApplication

        # correlate_except: each sub-query has its own owner row, whatever the outer query joins.
        owners = [
            (Client, Document.client_id),
            (Lead, Document.lead_id),
            (LoanApplication, Document.loan_application_id),
        ]
        return or_(
            *(
                exists(
                    select(model.id)
                    .where(model.id == column, model.__scope__[kind](actor))
                    .correlate_except(model)
                )
                for model, column in owners
                if kind in model.__scope__
            )
        )

    return criteria


@scoped
class Document(Model):
    __tablename__ = "document"
    __table_args__ = (
        CheckConstraint(_one_of("doc_type", DOC_TYPES), name="ck_document_type"),
        CheckConstraint(
            "(CASE WHEN client_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN lead_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN loan_application_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="ck_document_one_owner",
        ),
        CheckConstraint("size_bytes > 0", name="ck_document_not_empty"),
        CheckConstraint("version >= 1", name="ck_document_version"),
        UniqueConstraint("client_id", "doc_type", "version", name="uq_document_client_version"),
        UniqueConstraint("lead_id", "doc_type", "version", name="uq_document_lead_version"),
        UniqueConstraint(
            "loan_application_id", "doc_type", "version", name="uq_document_application_version"
        ),
        Index("ix_document_expires_on", "expires_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(30))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    loan_application_id: Mapped[int | None] = mapped_column(
        ForeignKey("loan_application.id", name="fk_document_loan_application"), index=True
    )
    original_name: Mapped[str] = mapped_column(String(255))
    """As the uploader named it: shown (escaped), never used as a path."""
    storage_backend: Mapped[str] = mapped_column(String(10))
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    expires_on: Mapped[date | None] = mapped_column(Date)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client | None] = relationship(Client)
    lead: Mapped[Lead | None] = relationship(Lead)
    uploaded_by: Mapped[User] = relationship(User)

    __scope__ = {kind: _visible_owner(kind) for kind in ("branch", "own", "bdm", "broker")}

    @property
    def owner(self):
        if self.loan_application_id is not None:
            from app.extensions import db
            from app.lending.models import LoanApplication

            return db.session.get(LoanApplication, self.loan_application_id)
        return self.client or self.lead

    def __repr__(self) -> str:
        return f"{self.doc_type.replace('_', ' ')} v{self.version} ({self.original_name})"
