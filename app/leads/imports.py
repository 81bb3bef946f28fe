"""Lead imports as a unit of work the screen, the API and ``flask crm import-leads`` share.

``upload_import`` checks the file (name, bytes, size, columns) and records it; the check and the
import then run as jobs (``app.core.jobs``: RQ with Redis, inline without):

    uploaded -> checking -> checked -> importing -> imported
                       \\-> failed      \\-> checked (the report changed meanwhile)
    uploaded | checked | failed -> discarded

The import is one transaction: it takes a lock that serialises imports (PostgreSQL), checks the
rows again, and imports nothing if any row's verdict changed since the report the user read (a new
duplicate, say); otherwise it inserts the valid rows and records one audit event with the counts.
The check keeps the valid rows as it prepared them (``checked_rows``), so the import looks up only
their duplicates again; when a row became a duplicate, or the uploader's roles or branch changed,
every row is checked again and the new report stored for the user to read.

Both jobs may run more than once: a worker killed in the middle (``kill -9``, a lost machine)
leaves its job abandoned, and RQ runs it again (``JOB_RETRIES``) once the dead worker's heartbeat
has run out. The killed transaction wrote nothing; the next run starts over, and a run that finds
the work already done (the import no longer ``importing``) does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select, text, update

from app.core.audit import record_event
from app.core.errors import ConflictError, DomainError, FieldError, NotFound, PermissionDenied
from app.core.jobs import EnqueuedJob, enqueue
from app.core.types import utcnow
from app.core.validators import clean_text
from app.extensions import db
from app.leads.importing import (
    ImportReport,
    check_rows,
    check_upload,
    count_new_duplicates,
    insert_leads,
    lead_values,
    pack_checked,
    read_rows,
    sha256,
    unpack_checked,
)
from app.leads.models import LeadImport
from app.security.scoping import UNSCOPED, Actor, actor_for_user, current_actor

_IMPORT_LOCK_KEY = 7_301_946_202  # serialises lead imports (pg_advisory_xact_lock)
PROGRESS_EVERY = 500  # rows between two progress writes
DISCARDABLE = ("uploaded", "checked", "failed")
JOB_RETRIES = 2
"""Runs of a check or an import after the first was abandoned (its worker died) or failed."""


def max_import_bytes() -> int:
    return int(current_app.config.get("CRM_MAX_IMPORT_BYTES", 20 * 1024 * 1024))


def upload_import(filename: str | None, data: bytes, actor: Actor | None = None) -> LeadImport:
    """Check an uploaded file and record it as a new import (the caller commits, then calls
    ``start_check``). A refused file raises FieldError and leaves nothing behind."""
    actor = actor if actor is not None else current_actor()
    if actor is None or actor.user_id is None:
        raise PermissionDenied("an import needs a signed-in member of staff.")
    if actor.branch_id is None:
        raise FieldError("you have no branch (staff profile), so imported leads have no home.")
    name = clean_text(filename, "file", 255)
    if not name:
        raise FieldError("choose a .csv or .xlsx file to import.", "file")
    fmt = check_upload(name, data, max_import_bytes())
    rows = read_rows(name, data)
    lead_import = LeadImport(
        file_name=name,
        file_format=fmt,
        file_size=len(data),
        file_sha256=sha256(data),
        content=data,
        status="uploaded",
        total_rows=len(rows),
        processed_rows=0,
        created_by_id=actor.user_id,
        branch_id=actor.branch_id,
    )
    db.session.add(lead_import)
    db.session.flush()
    return lead_import


def find_import(import_id: int, for_update: bool = False) -> LeadImport:
    """An import the signed-in user may see (row scoping), else NotFound."""
    query = select(LeadImport).where(LeadImport.id == import_id)
    if for_update:
        query = query.with_for_update()
    lead_import = db.session.scalar(query)
    if lead_import is None:
        raise NotFound("no such import (or it is not one of yours).")
    return lead_import


def start_check(lead_import: LeadImport) -> EnqueuedJob:
    """Hand the committed import to the check job."""
    return enqueue(
        "app.leads.imports.check_import_job",
        lead_import.id,
        job_id=f"lead-import-check-{lead_import.id}-{utcnow():%Y%m%d%H%M%S%f}",
        retries=JOB_RETRIES,
        retry_intervals=[0] * JOB_RETRIES,
    )


def request_import(import_id: int) -> LeadImport:
    """Accept the report: a checked import moves to ``importing`` (the caller commits, then
    calls ``start_import``). Twice, or on an import that is not checked, is refused."""
    lead_import = find_import(import_id, for_update=True)
    if lead_import.status != "checked":
        raise ConflictError(
            f"this import is {lead_import.status}; only a checked import can be imported.",
            "status",
        )
    lead_import.status = "importing"
    lead_import.processed_rows = 0
    lead_import.message = None
    return lead_import


def start_import(lead_import: LeadImport) -> EnqueuedJob:
    return enqueue(
        "app.leads.imports.import_rows_job",
        lead_import.id,
        job_id=f"lead-import-rows-{lead_import.id}-{utcnow():%Y%m%d%H%M%S%f}",
        retries=JOB_RETRIES,
        retry_intervals=[0] * JOB_RETRIES,
    )


def discard_import(import_id: int) -> LeadImport:
    """Import nothing: the import is closed and its file dropped (the caller commits)."""
    lead_import = find_import(import_id, for_update=True)
    if lead_import.status not in DISCARDABLE:
        raise ConflictError(
            f"this import is {lead_import.status}; only an uploaded, checked or failed "
            "import can be discarded.",
            "status",
        )
    lead_import.status = "discarded"
    lead_import.content = None
    lead_import.checked_rows = None
    lead_import.finished_at = utcnow()
    lead_import.message = "Nothing was imported."
    return lead_import


# ---- the jobs (ids in, their own transactions) -----------------------------------------------


class _ProgressWriter:
    """Writes ``processed_rows`` every few hundred rows on a connection of its own, so the
    screen's progress bar moves while the job's transaction is still open. Not audited: a
    progress tick is not a change of business data."""

    def __init__(self, import_id: int, also: Callable[[int], None] | None = None) -> None:
        self.import_id, self.also = import_id, also
        self.done = self.written = 0

    def __call__(self, rows: int) -> None:
        self.done += rows
        if self.also:
            self.also(rows)
        if self.done - self.written >= PROGRESS_EVERY:
            with db.engine.begin() as connection:
                connection.execute(
                    update(LeadImport.__table__)
                    .where(LeadImport.__table__.c.id == self.import_id)
                    .values(processed_rows=self.done)
                )
            self.written = self.done


def _load(import_id: int) -> LeadImport | None:
    # Jobs act for the system on an id the request already checked; always the row as committed
    # now, never a copy the session loaded earlier.
    return db.session.scalar(
        select(LeadImport).where(LeadImport.id == import_id),
        execution_options={**UNSCOPED, "populate_existing": True},
    )


def _actor_of(lead_import: LeadImport) -> Actor:
    actor = actor_for_user(lead_import.created_by_id)
    if actor is None:
        raise FieldError("the member of staff who uploaded this file no longer exists.")
    return actor


def _store_report(lead_import: LeadImport, report: ImportReport, actor: Actor) -> None:
    lead_import.total_rows = report.total
    lead_import.processed_rows = report.total
    lead_import.valid_rows = len(report.valid)
    lead_import.invalid_rows = len(report.invalid_rows)
    lead_import.duplicate_rows = len(report.duplicate_rows)
    lead_import.problems = report.problems_json()
    lead_import.checked_rows = pack_checked(report, actor)
    lead_import.checked_at = utcnow()


def _fail(import_id: int, message: str) -> None:
    db.session.rollback()
    lead_import = _load(import_id)
    if lead_import is not None:
        lead_import.status = "failed"
        lead_import.message = message[:500]
        lead_import.finished_at = utcnow()
        db.session.commit()


def check_import_job(import_id: int, progress: Callable[[int], None] | None = None) -> str | None:
    """Check every row of an uploaded file and store the report. Returns the new status."""
    lead_import = _load(import_id)
    if lead_import is None or lead_import.status not in ("uploaded", "checking"):
        return None  # discarded meanwhile, or already checked
    lead_import.status = "checking"
    lead_import.processed_rows = 0
    db.session.commit()
    try:
        rows = read_rows(lead_import.file_name, lead_import.content or b"")
        actor = _actor_of(lead_import)
        report = check_rows(rows, actor, _ProgressWriter(import_id, progress))
        lead_import = _load(import_id)
        if lead_import is None or lead_import.status != "checking":
            db.session.rollback()
            return None
        _store_report(lead_import, report, actor)
        lead_import.status = "checked"
        db.session.commit()
        return "checked"
    except DomainError as exc:
        _fail(import_id, f"The file could not be checked: {exc}")
        return "failed"
    except Exception as exc:
        _fail(import_id, f"The check stopped unexpectedly ({exc.__class__.__name__}).")
        raise


def import_rows_job(import_id: int, progress: Callable[[int], None] | None = None) -> str | None:
    """Import the valid rows of an accepted report, all or nothing. Returns the new status.

    The lock is taken before the import is read: a second run of the same import (a retry, a
    duplicate job) waits for the first, then finds it imported and does nothing."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK_KEY})
    lead_import = _load(import_id)
    if lead_import is None or lead_import.status != "importing":
        db.session.rollback()  # releases the lock
        return None
    try:
        actor = _actor_of(lead_import)
        total = lead_import.total_rows
        # Checked again inside this transaction: nothing that became a duplicate slips in. The
        # rows the check prepared need only their duplicates looked up again; without them (or
        # when the uploader's roles or branch changed) every row is checked again.
        checked = unpack_checked(lead_import.checked_rows, actor)
        tick = _ProgressWriter(import_id, progress)
        if checked is not None and len(checked) != lead_import.valid_rows:
            checked = None  # not the rows of the report the user read
        if checked is not None and count_new_duplicates(checked, tick) == 0:
            invalid, duplicates = lead_import.invalid_rows, lead_import.duplicate_rows
            return _insert(lead_import, checked, total, invalid, duplicates, actor)
        rows = read_rows(lead_import.file_name, lead_import.content or b"")
        accepted = {p["row"] for p in json.loads(lead_import.problems or "[]")}
        report = check_rows(rows, actor, _ProgressWriter(import_id, progress))
        if report.problem_rows != accepted:
            changed = len(report.problem_rows ^ accepted)
            _store_report(lead_import, report, actor)
            lead_import.status = "checked"
            lead_import.message = (
                f"{changed} row(s) changed since the check (a new duplicate, say); nothing was "
                "imported. Read the new report and choose again."
            )
            db.session.commit()
            return "checked"
        return _insert(
            lead_import,
            [lead_values(lead) for lead in report.valid],
            report.total,
            len(report.invalid_rows),
            len(report.duplicate_rows),
            actor,
        )
    except DomainError as exc:
        _fail(import_id, f"Nothing was imported: {exc}")
        return "failed"
    except Exception as exc:
        _fail(import_id, f"Nothing was imported: the import stopped ({exc.__class__.__name__}).")
        raise


def _insert(
    lead_import: LeadImport,
    rows: list[dict],
    total: int,
    invalid: int,
    duplicates: int,
    actor: Actor,
) -> str:
    imported = insert_leads(rows, lead_import_id=lead_import.id)
    lead_import.status = "imported"
    lead_import.imported_rows = imported
    lead_import.processed_rows = total
    lead_import.content = None
    lead_import.checked_rows = None
    lead_import.finished_at = utcnow()
    lead_import.message = f"{imported:,} lead(s) imported."
    db.session.flush()  # the status change's audit row takes the chain; the event follows
    record_event(
        "import",
        record=lead_import,
        detail=(
            f"{lead_import.file_name}: {imported} lead(s) imported of {total} rows "
            f"({invalid} invalid, {duplicates} duplicates)"
        ),
        actor_id=actor.user_id,
        actor_name=actor.username,
    )
    db.session.commit()
    return "imported"


# ---- what the screen and the API show -----------------------------------------------------


def import_status(lead_import: LeadImport) -> dict:
    total = lead_import.total_rows or 0
    return {
        "id": lead_import.id,
        "file_name": lead_import.file_name,
        "status": lead_import.status,
        "finished": lead_import.status in ("checked", "imported", "discarded", "failed"),
        "total_rows": total,
        "processed_rows": lead_import.processed_rows,
        "percent": int(100 * lead_import.processed_rows / total) if total else 0,
        "valid_rows": lead_import.valid_rows,
        "invalid_rows": lead_import.invalid_rows,
        "duplicate_rows": lead_import.duplicate_rows,
        "imported_rows": lead_import.imported_rows,
        "message": lead_import.message,
        "created_at": lead_import.created_at.isoformat() if lead_import.created_at else None,
    }


def import_problems(lead_import: LeadImport) -> list[dict]:
    return json.loads(lead_import.problems or "[]")
