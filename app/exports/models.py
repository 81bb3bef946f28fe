"""A large export made in the background: what was asked, by whom, how far it got, where the
file is kept and until when."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of

EXPORT_STATUSES = ("queued", "running", "done", "failed", "expired")
EXPORT_FORMATS = ("csv", "xlsx", "pdf")
EXPORT_SOURCES = ("list", "report")


class ExportJob(Model):
    """One export too large to download at once. ``source`` is ``list`` (``target`` names the
    list screen's endpoint) or ``report`` (``target`` is the report's key); ``arguments`` are
    the list's or report's URL arguments (filters and order) as JSON, so the job builds the same
    rows under its owner's row scoping. Progress is written with plain UPDATEs (not audited
    field by field); the export itself and each download are audit events."""

    __tablename__ = "export_job"
    __table_args__ = (
        CheckConstraint(_one_of("status", EXPORT_STATUSES), name="ck_export_job_status"),
        CheckConstraint(_one_of("file_format", EXPORT_FORMATS), name="ck_export_job_format"),
        CheckConstraint(_one_of("source", EXPORT_SOURCES), name="ck_export_job_source"),
        CheckConstraint(
            "processed_rows >= 0 AND total_rows >= 0 AND processed_rows <= total_rows",
            name="ck_export_job_progress",
        ),
        CheckConstraint(
            "status <> 'done' OR (storage_key IS NOT NULL AND expires_at IS NOT NULL)",
            name="ck_export_job_done_file",
        ),
        Index("ix_export_job_owner_created", "owner_id", "created_at"),
        Index("ix_export_job_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", name="fk_export_job_owner_id_ab_user")
    )
    source: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(10))
    arguments: Mapped[str] = mapped_column(Text, default="{}")
    filters_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    storage_key: Mapped[str | None] = mapped_column(String(300))
    file_name: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(User)

    @property
    def percent(self) -> int:
        """Rows read so far; 100 only once the file is stored (a PDF of many rows still takes
        a while to lay out after its last row is read)."""
        if self.status in ("done", "expired"):
            return 100
        if not self.total_rows:
            return 0
        return min(99, int(self.processed_rows * 100 / self.total_rows))

    def __repr__(self) -> str:
        return f"export #{self.id} ({self.title}, {self.file_format.upper()})"
