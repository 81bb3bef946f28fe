"""Task and CalendarFeedToken (DOMAIN: tasks and calendar)."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import Lead, _one_of
from app.org.models import Branch
from app.security.scoping import scoped

TASK_PRIORITIES = ("low", "normal", "high", "urgent")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled")
OPEN_TASK_STATUSES = ("open", "in_progress")


def _own_task(actor):
    return or_(Task.assignee_id == actor.user_id, Task.created_by_id == actor.user_id)


@scoped
class Task(Model):
    """Something a member of staff has to do by a given time, maybe about a lead or a client."""

    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(_one_of("priority", TASK_PRIORITIES), name="ck_task_priority"),
        CheckConstraint(_one_of("status", TASK_STATUSES), name="ck_task_status"),
        CheckConstraint(
            "status <> 'done' OR completed_at IS NOT NULL", name="ck_task_done_completed_at"
        ),
        Index("ix_task_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_task_branch_status_due", "branch_id", "status", "due_at"),
        Index("ix_task_status_due", "status", "due_at"),
        Index("ix_task_created_by", "created_by_id"),
        Index("ix_task_lead", "lead_id"),
        Index("ix_task_client", "client_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="open")
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    assignee: Mapped[User] = relationship(User, foreign_keys=[assignee_id])
    created_by: Mapped[User | None] = relationship(User, foreign_keys=[created_by_id])
    branch: Mapped[Branch] = relationship(Branch)
    lead: Mapped[Lead | None] = relationship(Lead)
    client: Mapped[Client | None] = relationship(Client)

    # Agents, BDMs and brokers see the tasks given to them or made by them; managers their branch.
    __scope__ = {
        "branch": lambda actor: Task.branch_id == actor.branch_id,
        "own": _own_task,
        "bdm": _own_task,
        "broker": _own_task,
    }

    @property
    def is_overdue(self) -> bool:
        due = self.due_at
        return self.status in OPEN_TASK_STATUSES and due is not None and due < utcnow()

    def __repr__(self) -> str:
        return self.title or f"task {self.id}"


@scoped
class CalendarFeedToken(Model):
    """The private ICS feed of one member of staff. Only the SHA-256 of the secret is kept: the
    full link is shown once, when it is made; a revoked or replaced link answers 404."""

    __tablename__ = "calendar_feed_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"pii": "secret"})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(User)

    # Each member of staff sees (and replaces) only their own link; the feed itself looks the
    # hash up unscoped, since nobody is signed in there.
    __scope__ = {
        kind: (lambda actor: CalendarFeedToken.user_id == actor.user_id)
        for kind in ("branch", "own", "bdm", "broker")
    }

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"calendar feed of user {self.user_id}"
