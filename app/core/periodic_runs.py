"""When each periodic job last ran and how it ended, for the Admin's home page and Jobs page.

One row per job name, overwritten by every run (an upsert), so the table never grows: the
scheduler (RQ's ``run_periodic`` or the embedded thread) records a run after it ends, in the
job's own app context, once the job's own transaction is over.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime, utcnow
from app.extensions import db

log = logging.getLogger(__name__)

ERROR_CHARS = 1000


class PeriodicRun(Model):
    """The last run of one periodic job of ``app.core.schedule``."""

    __tablename__ = "periodic_run"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    """The last line of the exception, when the run failed."""
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"{self.name} at {self.finished_at:%Y-%m-%d %H:%M}"


def record_run(name: str, started_at: datetime, error: BaseException | None = None) -> None:
    """Write how ``name``'s run that began at ``started_at`` ended; commits (the job's work is
    committed or rolled back by then)."""
    finished = utcnow()
    message = None
    if error is not None:
        db.session.rollback()  # a failed job may leave its transaction open
        message = (f"{type(error).__name__}: {error}".strip().splitlines() or [""])[-1]
        message = message[:ERROR_CHARS]
    values = {
        "name": name,
        "started_at": started_at,
        "finished_at": finished,
        "succeeded": error is None,
        "error": message,
    }
    table = PeriodicRun.__table__
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    changes = {key: value for key, value in values.items() if key != "name"}
    if error is None:
        values["last_success_at"] = changes["last_success_at"] = finished
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_update(index_elements=[table.c.name], set_=changes)
    try:
        db.session.execute(statement)
        db.session.commit()
    except Exception:  # the record must never turn a finished job into a failed one
        db.session.rollback()
        log.exception("could not record the run of periodic job %s", name)


def last_runs() -> list[PeriodicRun]:
    """Every job's last run, the latest first."""
    return list(db.session.scalars(select(PeriodicRun).order_by(PeriodicRun.finished_at.desc())))
