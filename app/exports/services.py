"""Exports of lists and reports: at once when small, as a background job when large
(``app.exports.background``).

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
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, current_app, g, has_request_context, redirect, url_for

from app.core.audit import record_event
from app.core.errors import DomainError, NotFound
from app.core.replica import replica_reads
from app.core.types import utcnow
from app.exports import lists
from app.exports.models import ExportJob
from app.exports.pii import sees_full_contacts
from app.exports.writers import FORMATS, filters_in_words, write_table
from app.extensions import db
from app.reports.registry import Report, Table, get_report

log = logging.getLogger(__name__)


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
    if actor is None:  # no one to answer for it: contact details stay masked
        return frozenset(), None
    return actor.roles, actor.username


def render_file(fmt: str, table: Table, moment: datetime, by: str | None) -> tuple[bytes, int]:
    """The file of ``table``; a PDF's times in the zone of whoever exports it (the signed-in
    user, or the owner a background export or a report e-mail works for)."""
    from app.core.localtime import user_zone

    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
        rows = write_table(fmt, table, out, generated_at=moment, generated_by=by, zone=user_zone())
        out.seek(0)
        return out.read(), rows


def audit_export(
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
    with replica_reads():
        keys = lists.first_keys(spec, limit + 1)
    if len(keys) > limit:
        job = _start_job("list", view.endpoint, spec.title, fmt, spec.arguments, spec.words)
        return redirect(url_for("ExportJobView.page", pk=job.id))
    roles, username = _actor_roles_and_name()
    moment = utcnow()
    with replica_reads():
        rows = lists.list_rows(spec, keys, sees_full_contacts(roles))
        table = Table(spec.title, spec.headings_for(fmt), rows, spec.words)
        data, written = render_file(fmt, table, moment, username)
    audit_export(spec.record_type, spec.title, fmt, written, spec.words)
    return file_response(data, fmt, file_name(spec.title, fmt, moment))


# ---- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltReport:
    report: Report
    table: Table
    row_count: int


@contextmanager
def urls_outside_requests() -> Iterator[None]:
    """A report may link its rows to screens (``url_for``, e.g. a dashboard's drill-down list).
    Outside a request (a worker's job, a scheduled e-mail, the CLI) it runs in a request context
    on ``CRM_BASE_URL``, so those links are built as they would be on the site."""
    if has_request_context():
        yield
        return
    from app.security.scoping import acting_as_system

    base_url = current_app.config.get("CRM_BASE_URL") or "http://localhost"
    # Still the system (no row limits) unless the job acts for someone (``acting_as``).
    with current_app.test_request_context("/", base_url=base_url), acting_as_system():
        yield


def build_report(report: Report, filters: Mapping[str, str]) -> BuiltReport:
    """Build ``report`` under the current actor's scoping; its parts' rows are read once (they
    are aggregates: a handful of rows, rarely thousands)."""
    with urls_outside_requests(), replica_reads():
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
    data, written = render_file(fmt, built.table, moment, username)
    audit_export(report_record_type(report), built.table.title, fmt, written, built.table.filters)
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
    job_id = job.id
    try:
        enqueue("app.exports.jobs.run_export", job_id, queue="reports", job_id=f"export-{job_id}")
    except Exception as exc:  # Redis unreachable: the export's page says so instead of a 500
        log.exception("export #%s could not be queued", job_id)
        db.session.rollback()
        job = db.session.get(ExportJob, job_id)
        job.status, job.error = "failed", f"The background queue could not be reached ({exc})."
        db.session.commit()
    return job
