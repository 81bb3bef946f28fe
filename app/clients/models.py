"""Client (DOMAIN section 3): identity, contact, status, and encrypted identifiers."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.crypto import EncryptedText
from app.core.listing import trigram_index
from app.core.masking import mask
from app.core.types import UTCDateTime, utcnow
from app.leads.models import INVESTMENT_CAPACITY_BANDS, _one_of
from app.org.models import Branch
from app.security.scoping import scoped, through_parent

CLIENT_TYPES = ("individual", "company")
CLIENT_STATUSES = ("active", "inactive", "suspended")
KYC_STATUSES = ("pending", "verified", "rejected", "expired")
SEGMENTS = ("retail", "affluent", "hni", "uhni")
# The segment follows from the investment capacity band; staff never set it by hand.
SEGMENT_BY_CAPACITY = dict(zip(INVESTMENT_CAPACITY_BANDS, SEGMENTS, strict=True))
RISK_PROFILES = ("conservative", "moderate", "aggressive")
CLIENT_CHANNELS = ("email", "sms")
CONTACT_KINDS = ("email", "phone", "mobile", "whatsapp", "postal_address")

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
    "abn",
    "acn",
    "investment_capacity",
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
        CheckConstraint(
            "segment IS NULL OR " + _one_of("segment", SEGMENTS), name="ck_client_segment"
        ),
        CheckConstraint(
            "risk_profile IS NULL OR " + _one_of("risk_profile", RISK_PROFILES),
            name="ck_client_risk_profile",
        ),
        CheckConstraint(
            _one_of("preferred_channel", CLIENT_CHANNELS), name="ck_client_preferred_channel"
        ),
        # Every order the list offers, with the key as tie-breaker (stable deep pages).
        Index("ix_client_name_id", "name", "id"),
        Index("ix_client_segment_id", "segment", "id"),
        Index("ix_client_status_id", "status", "id"),
        Index("ix_client_kyc_status_id", "kyc_status", "id"),
        Index("ix_client_branch_id_id", "branch_id", "id"),
        Index("ix_client_rm_id", "relationship_manager_id", "id"),
        # The same orders within a branch's rows (what a branch manager pages through).
        *(
            Index(f"ix_client_branch_{column}_id", "branch_id", column, "id")
            for column in ("name", "segment", "status", "kyc_status")
        ),
        *(trigram_index("client", c) for c in ("name", "email", "phone")),
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
    # Australian business identifiers (companies and sole traders), checked with python-stdnum.
    abn: Mapped[str | None] = mapped_column(String(11))
    acn: Mapped[str | None] = mapped_column(String(9))
    investment_capacity: Mapped[str | None] = mapped_column(String(20))
    segment: Mapped[str | None] = mapped_column(String(20))
    risk_profile: Mapped[str | None] = mapped_column(String(20))
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Communication preferences: the channels allowed live in notification_preference.
    preferred_channel: Mapped[str] = mapped_column(String(10), default="email")
    # Marketing: campaigns reach only clients who agreed; an unsubscribe link withdraws it.
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    marketing_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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


def _through_client(column):
    """Scope rules for rows that belong to a client: visible where the client is."""
    return through_parent(Client, column)


@scoped
class ClientContact(Model):
    """One more way to reach a client: a type, a value, and whether it is preferred."""

    __tablename__ = "client_contact"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CONTACT_KINDS), name="ck_client_contact_kind"),
        UniqueConstraint("client_id", "kind", "value", name="uq_client_contact_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(String(60))
    value: Mapped[str] = mapped_column(String(500))
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)

    __scope__ = _through_client(lambda: ClientContact.client_id)

    def __repr__(self) -> str:
        return f"{self.kind}: {self.value}"


@scoped
class ClientDirector(Model):
    """A director (or officer) of a company client."""

    __tablename__ = "client_director"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[str] = mapped_column(String(60), default="Director")
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    appointed_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)

    __scope__ = _through_client(lambda: ClientDirector.client_id)

    def __repr__(self) -> str:
        return f"{self.full_name} ({self.position})"


@scoped
class RiskAssessment(Model):
    """One completed risk questionnaire: the answers, their score, the profile it gave."""

    __tablename__ = "risk_assessment"
    __table_args__ = (
        CheckConstraint(_one_of("profile", RISK_PROFILES), name="ck_risk_assessment_profile"),
        Index("ix_risk_assessment_client", "client_id", "assessed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    answers: Mapped[str] = mapped_column(Text)
    """JSON: question key -> chosen answer key."""
    score: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(20))
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    assessed_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_client(lambda: RiskAssessment.client_id)

    def __repr__(self) -> str:
        return f"{self.profile} ({self.score})"


# A lead points at the campaign that brought it in; campaigns reach clients and leads: map
# them together (here, where both leads and clients are defined).
import app.campaigns.models  # noqa: E402, F401
