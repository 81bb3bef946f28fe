"""Background exports: the job that makes a large export's file as its owner, where it stands,
its owner-only download, and the removal of expired files."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from flask import Response, current_app, g, has_request_context, redirect, url_for
from sqlalchemy import select, update

from app.core.audit import record_event
from app.core.errors import DomainError, NotFound
from app.core.localtime import format_local
from app.core.replica import replica_reads
from app.core.types import utcnow
from app.exports import lists
from app.exports.models import ExportJob
from app.exports.pii import sees_full_contacts
from app.exports.services import (
    audit_export,
    build_report,
    file_name,
    file_response,
    render_file,
    report_record_type,
    ttl,
)
from app.exports.writers import FORMATS
from app.extensions import db
from app.reports.registry import Table, get_report

log = logging.getLogger(__name__)


class Gone(DomainError):
    """The export's file has expired and was (or is about to be) removed."""

    status = 410


def _set(job_id: int, **values: Any) -> None:
    """Progress and status as plain UPDATEs, committed at once for the progress bar."""
    db.session.execute(update(ExportJob).where(ExportJob.id == job_id).values(**values))
    db.session.commit()


def run_export(job_id: int) -> str:
    """Make the export file of ``job_id`` as its owner; returns the final status."""
    from app.security.scoping import acting_as, actor_for_user

    job = db.session.get(ExportJob, job_id)
    if job is None or job.status not in ("queued", "running"):
        return job.status if job is not None else "missing"
    actor = actor_for_user(job.owner_id)
    if actor is None:
        _set(job_id, status="failed", error="The member of staff who asked for it is gone.")
        return "failed"
    _set(job_id, status="running", started_at=utcnow(), processed_rows=0)
    try:
        with acting_as(actor), _as_user(job.owner):
            with replica_reads():  # the rows; the job's own progress is written to the primary
                table, count, audit_type, name_extra = _job_table(job_id, job, actor)
                _set(job_id, total_rows=count)
                moment = utcnow()
                data, written = render_file(job.file_format, table, moment, actor.username)
            key = f"exports/{job.owner_id}/{job_id}-{secrets.token_hex(12)}.{job.file_format}"
            from app.core.storage import get_storage

            get_storage().put(key, data, FORMATS[job.file_format].content_type)
            name = file_name(job.title, job.file_format, moment, name_extra)
            _set(
                job_id,
                status="done",
                processed_rows=written,
                total_rows=max(count, written),
                storage_key=key,
                file_name=name,
                size_bytes=len(data),
                finished_at=utcnow(),
                expires_at=utcnow() + ttl(),
            )
            audit_export(audit_type, job.title, job.file_format, written, table.filters, job)
    except Exception as exc:  # the owner sees why on the export's page
        db.session.rollback()
        log.exception("export #%s failed", job_id)
        _set(job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    return "done"


class _as_user:
    """``g.user`` for the job's duration: list screens whose base filter names the signed-in
    user ("My tasks") read it there."""

    def __init__(self, user: Any) -> None:
        self.user = user

    def __enter__(self) -> None:
        self.previous = g.get("user")
        g.user = self.user

    def __exit__(self, *exc: Any) -> None:
        g.user = self.previous


def _job_table(job_id: int, job: ExportJob, actor: Any) -> tuple[Table, int, str, Sequence[str]]:
    if job.source == "list":
        view = lists.find_list_view(job.target)
        spec = lists.list_export(view, lists.arguments_from_json(job.arguments))
        keys = lists.all_keys(spec)
        rows = lists.list_rows(
            spec,
            keys,
            sees_full_contacts(actor.roles),
            on_batch=lambda done: _set(job_id, processed_rows=min(done, len(keys))),
        )
        table = Table(spec.title, spec.headings_for(job.file_format), rows, spec.words)
        return table, len(keys), spec.record_type, ()
    report = get_report(job.target)
    if report is None:
        raise LookupError(f"the report {job.target!r} is no longer offered")
    filters = json.loads(job.arguments or "{}")
    built = build_report(report, filters)
    table = _counting(built.table, lambda done: _set(job_id, processed_rows=done))
    return table, built.row_count, report_record_type(report), [str(v) for v in filters.values()]


def _counting(table: Table, on_batch: Callable[[int], None], every: int = 1000) -> Table:
    """The same table whose rows report progress every ``every`` rows."""
    done = [0]

    def counted(rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        for row in rows:
            yield row
            done[0] += 1
            if done[0] % every == 0:
                on_batch(done[0])

    parts = [Table(p.title, p.columns, counted(p.rows), p.filters) for p in table.parts()]
    if table.sections:
        return Table(table.title, (), (), table.filters, sections=parts)
    return parts[0]


# ---- the owner's view of an export ---------------------------------------------------------


def find_own_export(job_id: int, user_id: int) -> ExportJob:
    """The export ``job_id`` if ``user_id`` asked for it; anyone else's is not found (404)."""
    job = db.session.scalar(
        select(ExportJob).where(ExportJob.id == job_id, ExportJob.owner_id == user_id)
    )
    if job is None:
        raise NotFound("No such export.")
    return job


def is_expired(job: ExportJob, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return job.status == "expired" or (job.expires_at is not None and job.expires_at <= now)


def progress(job: ExportJob) -> dict[str, Any]:
    expired = is_expired(job)
    finished = job.status in ("done", "failed", "expired")
    return {
        "id": job.id,
        "status": "expired" if expired else job.status,
        "processed_rows": job.processed_rows,
        "total_rows": job.total_rows,
        "percent": job.percent,
        "finished": finished,
        "error": job.error,
        "download_url": url_for("ExportJobView.download", pk=job.id)
        if job.status == "done" and not expired and has_request_context()
        else None,
        "expires_at": job.expires_at.isoformat() if job.expires_at else None,
        "expires_at_shown": format_local(job.expires_at) if job.expires_at else None,
        "file_name": job.file_name,
    }


def download(job: ExportJob) -> Response:
    """The file, to its owner; audited. 410 once expired, 409 while not ready."""
    from app.core.errors import ConflictError
    from app.core.storage import get_storage

    if is_expired(job):
        raise Gone("This export has expired; export the list again.")
    if job.status != "done" or not job.storage_key:
        raise ConflictError("This export is not ready yet.")
    storage = get_storage()
    fmt = FORMATS[job.file_format]
    url = storage.download_url(
        job.storage_key,
        job.file_name or "export",
        fmt.content_type,
        int(current_app.config.get("CRM_DOWNLOAD_URL_SECONDS", 300)),
    )
    record_event(
        "download",
        record_type="export_job",
        record_id=job.id,
        detail=f"{job.file_name} ({job.title}, {fmt.label}, {job.processed_rows:,} rows)",
    )
    if url is not None:
        return redirect(url)
    return file_response(storage.get(job.storage_key), job.file_format, job.file_name or "export")


def remove_expired_exports(now: datetime | None = None) -> int:
    """Delete the files of expired exports and mark them expired; returns how many."""
    from app.core.storage import StorageError, get_storage

    now = now or utcnow()
    storage = get_storage()
    expired = list(
        db.session.execute(
            select(ExportJob.id, ExportJob.storage_key).where(
                ExportJob.status == "done", ExportJob.expires_at <= now
            )
        )
    )
    removed = 0
    for job_id, key in expired:
        try:
            if key:
                storage.delete(key)
        except (StorageError, ValueError):
            log.exception("export #%s: its file could not be removed; trying next time", job_id)
            continue
        _set(job_id, status="expired", storage_key=None)
        removed += 1
    return removed
