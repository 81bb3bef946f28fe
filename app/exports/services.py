"""Exports of lists and reports: at once when small, as a background job when large.

* Up to ``CRM_EXPORT_INLINE_ROWS`` rows (default 1,000) download at once; the decision reads at
  most that many rows plus one, never a count of the whole table.
* A larger export becomes an ``ExportJob`` and a job on the ``reports`` queue that works as its
  owner (``acting_as``: the owner's row scoping and masking), reads in batches, records its
  progress, stores the file through the storage backend under a key the server makes, and keeps
  it ``CRM_EXPORT_TTL_HOURS`` (default 24). Only the owner downloads it; after expiry, 410.
* Every export (when its row count is known) and every download is an audit event.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, current_app, g, has_request_context, redirect, url_for
from sqlalchemy import select, update

from app.core.audit import record_event
from app.core.errors import DomainError, NotFound
from app.core.types import utcnow
from app.exports import lists
from app.exports.models import ExportJob
from app.exports.pii import sees_full_contacts
from app.exports.writers import FORMATS, filters_in_words, write_table
from app.extensions import db
from app.reports.registry import Report, Table, get_report

log = logging.getLogger(__name__)


class Gone(DomainError):
    """The export's file has expired and was (or is about to be) removed."""

    status = 410


def inline_limit() -> int:
    return int(current_app.config.get("CRM_EXPORT_INLINE_ROWS", 1000))


def ttl() -> timedelta:
    return timedelta(hours=float(current_app.config.get("CRM_EXPORT_TTL_HOURS", 24)))


def file_name(title: str, fmt: str, moment: datetime, extra: Iterable[str] = ()) -> str:
    """``Leads`` -> ``leads-20261125-0931.csv`` (``extra`` parts, e.g. a report's filters, go
    between the title and the time)."""
    parts = [title, *extra]
    stem = "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts if part)
    return f"{stem or 'export'}-{moment:%Y%m%d-%H%M}.{FORMATS[fmt].extension}"


def file_response(data: bytes, fmt: str, name: str) -> Response:
    from app.core.storage import attachment_disposition

    return Response(
        data,
        mimetype=FORMATS[fmt].content_type.split(";")[0],
        headers={
            "Content-Disposition": attachment_disposition(name),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
        content_type=FORMATS[fmt].content_type,
    )


def _actor_roles_and_name() -> tuple[frozenset[str], str | None]:
    from app.security.scoping import current_actor

    actor = current_actor()
    if actor is None:
        return frozenset({"Admin"}), None
    return actor.roles, actor.username


def _render(fmt: str, table: Table, moment: datetime, by: str | None) -> tuple[bytes, int]:
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
        rows = write_table(fmt, table, out, generated_at=moment, generated_by=by)
        out.seek(0)
        return out.read(), rows


def _audit_export(
    record_type: str, title: str, fmt: str, rows: int, words: Mapping[str, str], job=None
) -> None:
    detail = (
        f"{title} exported as {FORMATS[fmt].label}, {rows:,} rows "
        f"(filters: {filters_in_words(words)})"
    )
    if job is not None:
        detail += f"; background export #{job.id}"
    record_event("export", record_type=record_type, detail=detail[:2000])


# ---- lists ----------------------------------------------------------------------------------


def export_list_response(view: Any, fmt: str, args: Mapping[str, Any]) -> Response:
    """The file (small list) or a redirect to the background export's page (large list)."""
    if fmt not in FORMATS:
        raise NotFound(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    spec = lists.list_export(view, args)
    limit = inline_limit()
    keys = lists.first_keys(spec, limit + 1)
    if len(keys) > limit:
        job = _start_job("list", view.endpoint, spec.title, fmt, spec.arguments, spec.words)
        return redirect(url_for("ExportJobView.page", pk=job.id))
    roles, username = _actor_roles_and_name()
    moment = utcnow()
    rows = lists.list_rows(spec, keys, sees_full_contacts(roles))
    table = Table(spec.title, spec.headings, rows, spec.words)
    data, written = _render(fmt, table, moment, username)
    _audit_export(spec.record_type, spec.title, fmt, written, spec.words)
    return file_response(data, fmt, file_name(spec.title, fmt, moment))


# ---- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltReport:
    report: Report
    table: Table
    row_count: int


def build_report(report: Report, filters: Mapping[str, str]) -> BuiltReport:
    """Build ``report`` under the current actor's scoping; its parts' rows are read once (they
    are aggregates: a handful of rows, rarely thousands)."""
    table = report.build(filters)
    parts = [
        Table(part.title, list(part.columns), list(part.rows), part.filters)
        for part in table.parts()
    ]
    count = sum(len(part.rows) for part in parts)
    if table.sections:
        table = Table(table.title, (), (), table.filters, sections=parts)
    else:
        table = parts[0]
    return BuiltReport(report, table, count)


def report_filters(args: Mapping[str, Any]) -> dict[str, str]:
    """A report's filters from a URL: every argument, its first value."""
    return {key: str(args.get(key)) for key in args if args.get(key) not in (None, "")}


def report_record_type(report: Report) -> str:
    return report.key.replace("-", "_")


def report_file_name(report: Report, filters: Mapping[str, str], fmt: str, moment) -> str:
    return file_name(report.key, fmt, moment, [str(v) for v in filters.values()])


def export_report_response(key: str, fmt: str, args: Mapping[str, Any]) -> Response:
    """``/reports/<key>/export/<fmt>``: unknown report or format 404, no read permission on the
    report's resource 403, a filter it refuses 400 naming it; small at once, large as a job."""
    from flask import abort

    report = get_report(key)
    if report is None or fmt not in FORMATS:
        abort(404)
    if not may_read_report(report):
        abort(403)
    filters = report_filters(args)
    try:
        built = build_report(report, filters)
    except DomainError as exc:
        if exc.status == 404:
            abort(404)
        return Response(str(exc), status=400, mimetype="text/plain")
    if built.row_count > inline_limit():
        job = _start_job("report", key, built.table.title, fmt, filters, built.table.filters)
        return redirect(url_for("ExportJobView.page", pk=job.id))
    _, username = _actor_roles_and_name()
    moment = utcnow()
    data, written = _render(fmt, built.table, moment, username)
    _audit_export(report_record_type(report), built.table.title, fmt, written, built.table.filters)
    return file_response(data, fmt, report_file_name(report, filters, fmt, moment))


def may_read_report(report: Report, roles: Iterable[str] | None = None) -> bool:
    """Whether the signed-in user (or someone holding ``roles``) may read ``report``."""
    from app.security.roles import READ, ROLES, allowed

    if roles is not None:
        return any(role in ROLES and allowed(role, report.resource, READ) for role in roles)
    return bool(current_app.appbuilder.sm.has_access(f"can_{READ}", report.resource))


# ---- background exports -----------------------------------------------------------------------


def _start_job(
    source: str,
    target: str,
    title: str,
    fmt: str,
    arguments: Mapping[str, Any],
    words: Mapping[str, str],
) -> ExportJob:
    from app.core.jobs import enqueue

    job = ExportJob(
        owner_id=g.user.id,
        source=source,
        target=target,
        title=title[:200],
        file_format=fmt,
        arguments=json.dumps(arguments, sort_keys=True),
        filters_text=filters_in_words(words),
        status="queued",
    )
    db.session.add(job)
    db.session.commit()
    enqueue("app.exports.jobs.run_export", job.id, queue="reports", job_id=f"export-{job.id}")
    return job


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
            table, count, audit_type, name_extra = _job_table(job_id, job, actor)
            _set(job_id, total_rows=count)
            moment = utcnow()
            data, written = _render(job.file_format, table, moment, actor.username)
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
            _audit_export(audit_type, job.title, job.file_format, written, table.filters, job)
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
        return Table(spec.title, spec.headings, rows, spec.words), len(keys), spec.record_type, ()
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
