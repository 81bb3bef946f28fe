"""Lead and Interaction (DOMAIN section 2)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from markupsafe import Markup
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    exists,
    false,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.core.listing import trigram_index
from app.core.types import UTCDateTime, utcnow
from app.org.models import Branch
from app.security.scoping import scoped

if TYPE_CHECKING:
    from app.campaigns.models import Campaign
    from app.clients.models import Client

LEAD_SOURCES = ("web_form", "manual", "import", "referral", "campaign", "api")
LEAD_STATUSES = ("new", "contacted", "qualified", "converted", "lost")
OPEN_LEAD_STATUSES = ("new", "contacted", "qualified")
# Investable assets band -> the client segment it implies later on conversion.
INVESTMENT_CAPACITY_BANDS = ("under_100k", "100k_1m", "1m_10m", "over_10m")
INTERACTION_KINDS = ("call", "email", "meeting", "note")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


@scoped
class Lead(Model):
    __tablename__ = "lead"
    __table_args__ = (
        CheckConstraint(_one_of("source", LEAD_SOURCES), name="ck_lead_source"),
        CheckConstraint(_one_of("status", LEAD_STATUSES), name="ck_lead_status"),
        CheckConstraint("score BETWEEN 0 AND 100", name="ck_lead_score_range"),
        CheckConstraint(
            "investment_capacity IS NULL OR "
            + _one_of("investment_capacity", INVESTMENT_CAPACITY_BANDS),
            name="ck_lead_investment_capacity",
        ),
        CheckConstraint("status <> 'lost' OR lost_reason IS NOT NULL", name="ck_lead_lost_reason"),
        Index("ix_lead_email", "email"),
        Index("ix_lead_phone", "phone"),
        Index("ix_lead_created_at", "created_at"),
        Index("ix_lead_next_follow_up_at", "next_follow_up_at"),
        # Every order the list offers, with the key as tie-breaker (stable deep pages), and the
        # default order within a branch's or an agent's rows.
        Index("ix_lead_first_name_id", "first_name", "id"),
        Index("ix_lead_last_name_id", "last_name", "id"),
        Index("ix_lead_status_id", "status", "id"),
        Index("ix_lead_score_id", "score", "id"),
        Index("ix_lead_follow_up_id", "next_follow_up_at", "id"),
        Index("ix_lead_branch_id_id", "branch_id", "id"),
        Index("ix_lead_agent_id_id", "assigned_agent_id", "id"),
        Index("ix_lead_agent_status_id", "assigned_agent_id", "status", "id"),
        # The home page's follow-ups due, counted per agent or per branch from the index alone.
        Index("ix_lead_agent_follow_up_status", "assigned_agent_id", "next_follow_up_at", "status"),
        Index("ix_lead_branch_follow_up_status", "branch_id", "next_follow_up_at", "status"),
        # The lead board: each status column's most recently updated leads, for everyone, within
        # a branch and for one agent.
        Index("ix_lead_board", "status", "updated_at", "id"),
        Index("ix_lead_branch_board", "branch_id", "status", "updated_at", "id"),
        Index("ix_lead_agent_board", "assigned_agent_id", "status", "updated_at", "id"),
        # The sales dashboard's count by status, source and agent, within a branch and period,
        # read from the index alone.
        Index(
            "ix_lead_dashboard", "branch_id", "created_at", "status", "source", "assigned_agent_id"
        ),
        # The same orders within a branch's rows (what a branch manager pages through).
        *(
            Index(f"ix_lead_branch_{name}_id", "branch_id", column, "id")
            for name, column in (
                ("first_name", "first_name"),
                ("last_name", "last_name"),
                ("status", "status"),
                ("score", "score"),
                ("follow_up", "next_follow_up_at"),
            )
        ),
        *(
            trigram_index("lead", c)
            for c in ("first_name", "last_name", "email", "phone", "company")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    company: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20), default="manual")
    status: Mapped[str] = mapped_column(String(20), default="new")
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    score: Mapped[int] = mapped_column(Integer, default=0)
    score_breakdown: Mapped[str | None] = mapped_column(Text)
    investment_capacity: Mapped[str | None] = mapped_column(String(20))
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    notes: Mapped[str | None] = mapped_column(Text)
    next_follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set on conversion; the foreign key to client arrives with the clients desk.
    converted_client_id: Mapped[int | None] = mapped_column(Integer)
    # The import that created the lead (imports insert in bulk, so this is the lead's provenance).
    lead_import_id: Mapped[int | None] = mapped_column(
        ForeignKey("lead_import.id", name="fk_lead_lead_import_id"), index=True
    )
    # Marketing: campaigns reach only leads who agreed; an unsubscribe link withdraws it.
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    marketing_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The campaign that brought the lead in (its reference or UTM code on entry).
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", name="fk_lead_campaign_id", use_alter=True), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign | None] = relationship("Campaign", foreign_keys=[campaign_id])
    assigned_agent: Mapped[User | None] = relationship(User, foreign_keys=[assigned_agent_id])
    branch: Mapped[Branch] = relationship(Branch)
    interactions: Mapped[list[Interaction]] = relationship(
        back_populates="lead", order_by="Interaction.occurred_at.desc()"
    )

    __scope__ = {
        "branch": lambda actor: Lead.branch_id == actor.branch_id,
        "own": lambda actor: Lead.assigned_agent_id == actor.user_id,
    }

    @property
    def score_explained(self) -> Markup:
        """The score's breakdown as a list (factor: points, why) for the lead page."""
        import json

        items = json.loads(self.score_breakdown or "[]")
        lines = Markup("").join(
            Markup("<li><strong>{}</strong>: +{} ({})</li>").format(
                i["factor"], i["points"], i["why"]
            )
            for i in items
        )
        return Markup('<ul class="score-breakdown">{}</ul>').format(lines)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def __repr__(self) -> str:
        return self.full_name


@scoped
class Interaction(Model):
    """A call, e-mail, meeting or note with a lead: when, what came of it, who."""

    __tablename__ = "interaction"
    __table_args__ = (
        CheckConstraint(_one_of("kind", INTERACTION_KINDS), name="ck_interaction_kind"),
        Index("ix_interaction_lead_occurred", "lead_id", "occurred_at"),
        CheckConstraint(
            "lead_id IS NOT NULL OR client_id IS NOT NULL", name="ck_interaction_lead_or_client"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    # With a client directly, or set when the lead becomes a client (its history carries over).
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(User)
    lead: Mapped[Lead | None] = relationship(back_populates="interactions")
    client: Mapped[Client | None] = relationship("Client")

    # An interaction is visible where its lead is, or (once converted) where its client is.
    __scope__ = {
        "branch": lambda actor: _interaction_visible("branch", actor),
        "own": lambda actor: _interaction_visible("own", actor),
    }

    def __repr__(self) -> str:
        return f"{self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"


def _interaction_visible(kind: str, actor):
    from app.clients.models import Client

    return or_(
        exists(
            select(Lead.id)
            .where(Lead.id == Interaction.lead_id, Lead.__scope__[kind](actor))
            .correlate_except(Lead)
        ),
        exists(
            select(Client.id)
            .where(Client.id == Interaction.client_id, Client.__scope__[kind](actor))
            .correlate_except(Client)
        ),
    )


# uploaded -> checking -> checked -> importing -> imported | discarded | failed
# (a re-check that finds new duplicates while importing goes back to checked).
LEAD_IMPORT_STATUSES = (
    "uploaded",
    "checking",
    "checked",
    "importing",
    "imported",
    "discarded",
    "failed",
)
LEAD_IMPORT_FINAL = ("imported", "discarded")


@scoped
class LeadImport(Model):
    """A CSV/XLSX file of leads: checked row by row, then imported (valid rows) or discarded.

    The file's bytes are kept in the row until the import ends (imported or discarded), then
    dropped: the check and the import run as jobs, possibly on another machine, and the storage
    backend keeps files for ever, which a discarded list of people should not be.
    """

    __tablename__ = "lead_import"
    __table_args__ = (
        CheckConstraint(_one_of("status", LEAD_IMPORT_STATUSES), name="ck_lead_import_status"),
        CheckConstraint("file_format IN ('csv', 'xlsx')", name="ck_lead_import_file_format"),
        CheckConstraint(
            "processed_rows >= 0 AND processed_rows <= total_rows",
            name="ck_lead_import_progress",
        ),
        Index("ix_lead_import_created_by_status", "created_by_id", "status"),
        Index("ix_lead_import_branch_status", "branch_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(10))
    file_size: Mapped[int] = mapped_column(Integer)
    file_sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    status: Mapped[str] = mapped_column(String(20), default="uploaded")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    valid_rows: Mapped[int] = mapped_column(Integer, default=0)
    invalid_rows: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_rows: Mapped[int] = mapped_column(Integer, default=0)
    imported_rows: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row", "field", "reason", "duplicate", "existing"}], as the last check found them.
    problems: Mapped[str | None] = deferred(mapped_column(Text))
    # The valid rows as the last check prepared them (``importing.pack_checked``), so that the
    # import re-checks only their duplicates; dropped with ``content``.
    checked_rows: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    message: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", name="fk_lead_import_created_by_id_ab_user")
    )
    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branch.id", name="fk_lead_import_branch_id_branch")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User] = relationship(User, foreign_keys=[created_by_id])
    branch: Mapped[Branch] = relationship(Branch)

    __scope__ = {
        "branch": lambda actor: LeadImport.branch_id == actor.branch_id,
        "own": lambda actor: LeadImport.created_by_id == actor.user_id,
    }

    def __repr__(self) -> str:
        return f"import #{self.id} ({self.file_name})"
