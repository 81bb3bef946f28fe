"""Client (DOMAIN section 3): identity, contact, status, and encrypted identifiers."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.crypto import EncryptedText
from app.core.masking import mask
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.org.models import Branch
from app.security.scoping import scoped

CLIENT_TYPES = ("individual", "company")
CLIENT_STATUSES = ("active", "inactive", "suspended")
KYC_STATUSES = ("pending", "verified", "rejected", "expired")

# The fields staff type (screens and API alike); identifiers are entered in full, read masked.
PROFILE_FIELDS = (
    "client_type",
    "name",
    "legal_name",
    "registration_number",
    "email",
    "phone",
    "address",
    "date_of_birth",
)
IDENTIFIER_FIELDS = ("pan", "aadhaar", "tax_file_number")
MASKED_IDENTIFIER_FIELDS = tuple(f"{field}_masked" for field in IDENTIFIER_FIELDS)


@scoped
class Client(Model):
    __tablename__ = "client"
    __table_args__ = (
        CheckConstraint(_one_of("client_type", CLIENT_TYPES), name="ck_client_type"),
        CheckConstraint(_one_of("status", CLIENT_STATUSES), name="ck_client_status"),
        CheckConstraint(_one_of("kyc_status", KYC_STATUSES), name="ck_client_kyc_status"),
        Index("ix_client_branch_status", "branch_id", "status"),
        Index("ix_client_rm", "relationship_manager_id"),
        Index("ix_client_email", "email"),
        Index("ix_client_phone", "phone"),
        Index("ix_client_pan_hash", "pan_hash"),
        Index("ix_client_aadhaar_hash", "aadhaar_hash"),
        Index("ix_client_tfn_hash", "tfn_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_type: Mapped[str] = mapped_column(String(20), default="individual")
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str | None] = mapped_column(String(200))
    registration_number: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    # Identifiers: encrypted at rest, a keyed hash beside each for exact look-ups.
    pan: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "pan"})
    pan_hash: Mapped[str | None] = mapped_column(String(64), info={"pii": "secret"})
    aadhaar: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "aadhaar"})
    aadhaar_hash: Mapped[str | None] = mapped_column(String(64), info={"pii": "secret"})
    tax_file_number: Mapped[str | None] = mapped_column(EncryptedText, info={"pii": "tax_id"})
    tfn_hash: Mapped[str | None] = mapped_column(String(64), info={"pii": "secret"})
    status: Mapped[str] = mapped_column(String(20), default="active")
    kyc_status: Mapped[str] = mapped_column(String(20), default="pending")
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    relationship_manager_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    branch: Mapped[Branch] = relationship(Branch)
    relationship_manager: Mapped[User | None] = relationship(User)

    __scope__ = {
        "branch": lambda actor: Client.branch_id == actor.branch_id,
        "own": lambda actor: Client.relationship_manager_id == actor.user_id,
    }

    @property
    def pan_masked(self) -> str:
        return mask("pan", self.pan)

    @property
    def aadhaar_masked(self) -> str:
        return mask("aadhaar", self.aadhaar)

    @property
    def tax_file_number_masked(self) -> str:
        return mask("tax_id", self.tax_file_number)

    def __repr__(self) -> str:
        return self.name
