"""Background work of exports, called by name through ``app.core.jobs``: the export itself
(queue ``reports``) and the periodic removal of expired files."""

from __future__ import annotations


def run_export(job_id: int) -> str:
    from app.exports.background import run_export as run

    return run(job_id)


def remove_expired_exports() -> int:
    from app.exports.background import remove_expired_exports as remove
    from app.reports.mailing import remove_sent_report_files

    return remove() + remove_sent_report_files()
