"""AuditLog: one append-only, hash-chained row per thing that happened."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime, utcnow

AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "login",
    "login_failed",
    "logout",
    "permission_denied",
    "rejected",
    "download",
    "export",
    "reveal",
    "retention",
)

BigId = BigInteger().with_variant(Integer, "sqlite")


class AuditLog(Model):
    """Rows are never updated or deleted (a trigger refuses it); each carries the hash of the
    previous one, so `flask crm audit-verify` finds any row altered, removed or inserted."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_record", "record_type", "record_id"),
        Index("ix_audit_log_actor", "actor_id", "occurred_at"),
        Index("ix_audit_log_action", "action", "occurred_at"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the log outlives users
    actor_name: Mapped[str] = mapped_column(String(120))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"#{self.seq} {self.action} {self.record_type or ''} {self.record_id or ''}".strip()
