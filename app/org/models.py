"""Branches and the staff profile that ties a FAB user to a branch and a manager."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow
from app.security.scoping import scoped


class Branch(Model):
    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    address: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.name} ({self.code})"


@scoped
class StaffProfile(Model):
    """A member of staff: the FAB user plus branch, phone, title and manager."""

    __tablename__ = "staff_profile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(100))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), index=True)

    user: Mapped[User] = relationship(User, foreign_keys=[user_id])
    branch: Mapped[Branch] = relationship(Branch)
    manager: Mapped[User | None] = relationship(User, foreign_keys=[manager_id])

    __scope__ = {
        "branch": lambda actor: StaffProfile.branch_id == actor.branch_id,
        "own": lambda actor: StaffProfile.user_id == actor.user_id,
    }

    def __repr__(self) -> str:
        return f"{self.user} ({self.title or 'staff'})"
