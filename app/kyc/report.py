"""The KYC report: every figure one aggregate query, scoped like everything else (a manager sees
their branch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from app.clients.models import KYC_STATUSES, Client
from app.core.errors import FieldError
from app.core.types import utcnow
from app.documents.models import Document
from app.extensions import db
from app.kyc.models import KycCase
from app.org.models import Branch
from app.reports.registry import Filters, Table, register_report

EXPIRY_BUCKETS = (30, 60, 90)


@dataclass(frozen=True)
class KycReport:
    by_branch: list[tuple[str, dict[str, int]]]
    """branch name -> client count per KYC status"""
    waiting: list[tuple[str, int, object]]
    """reviewer (or "unassigned"), cases in review, oldest submission"""
    expiring_counts: dict[int, int]
    """30/60/90 -> current client documents expiring in the next 30, 60, 90 days"""
    expiring: list[tuple[int, str, str, int, date]]
    """(client id, client name, document type, version, expires on), soonest first"""


def current_client_documents():
    """Each client's newest version of each document type (older versions do not expire)."""
    newer = aliased(Document)
    return select(Document).where(
        Document.client_id.is_not(None),
        ~select(newer.id)
        .where(
            newer.client_id == Document.client_id,
            newer.doc_type == Document.doc_type,
            newer.version > Document.version,
        )
        .exists(),
    )


def build_report(today: date | None = None, limit: int = 500) -> KycReport:
    today = today or utcnow().date()
    status_counts = db.session.execute(
        select(Branch.name, Client.kyc_status, func.count(Client.id))
        .join(Branch, Branch.id == Client.branch_id)
        .group_by(Branch.name, Client.kyc_status)
        .order_by(Branch.name)
    ).all()
    by_branch: dict[str, dict[str, int]] = {}
    for branch, status, count in status_counts:
        by_branch.setdefault(branch, dict.fromkeys(KYC_STATUSES, 0))[status] = count

    waiting = db.session.execute(
        select(
            func.coalesce(User.username, "unassigned"),
            func.count(KycCase.id),
            func.min(KycCase.submitted_at),
        )
        .select_from(KycCase)
        .outerjoin(User, User.id == KycCase.reviewer_id)
        .where(KycCase.status == "in_review")
        .group_by(User.username)
        .order_by(func.count(KycCase.id).desc())
    ).all()

    current = current_client_documents().subquery()
    doc = aliased(Document, current)
    horizon = today + timedelta(days=EXPIRY_BUCKETS[-1])
    window = and_(doc.expires_on > today, doc.expires_on <= horizon)
    bucket_columns = [
        func.count(case((doc.expires_on <= today + timedelta(days=upper), 1)))
        for upper in EXPIRY_BUCKETS
    ]
    counts = db.session.execute(
        select(*bucket_columns)
        .select_from(doc)
        .join(Client, Client.id == doc.client_id)
        .where(window)
    ).one()
    expiring = db.session.execute(
        select(Client.id, Client.name, doc.doc_type, doc.version, doc.expires_on)
        .join(Client, Client.id == doc.client_id)
        .where(window)
        .order_by(doc.expires_on, Client.name)
        .limit(limit)
    ).all()
    return KycReport(
        by_branch=sorted(by_branch.items()),
        waiting=[tuple(row) for row in waiting],
        expiring_counts=dict(zip(EXPIRY_BUCKETS, counts, strict=True)),
        expiring=[tuple(row) for row in expiring],
    )


def kyc_report_table(filters: Filters) -> Table:
    """The report in four parts for exports and e-mails (one sheet each in a workbook)."""
    unknown = sorted(set(filters) - KYC_REPORT_FILTERS)
    if unknown:
        raise FieldError("the KYC report takes no filters.", unknown[0])
    report = build_report(limit=100_000)
    statuses = [status.replace("_", " ").capitalize() for status in KYC_STATUSES]
    return Table(
        "KYC report",
        (),
        (),
        {},
        sections=(
            Table(
                "Clients by KYC status and branch",
                ("Branch", *statuses, "Total"),
                [
                    [branch, *(counts[s] for s in KYC_STATUSES), sum(counts.values())]
                    for branch, counts in report.by_branch
                ],
            ),
            Table(
                "Cases waiting per reviewer",
                ("Reviewer", "Cases in review", "Oldest submitted (UTC)"),
                [list(row) for row in report.waiting],
            ),
            Table(
                "Documents expiring",
                ("Within days", "Documents"),
                [[days, count] for days, count in report.expiring_counts.items()],
            ),
            Table(
                "Expiring documents",
                ("Expires on", "Client id", "Client", "Document", "Version"),
                [
                    [expires_on, client_id, name, doc_type, version]
                    for client_id, name, doc_type, version, expires_on in report.expiring
                ],
            ),
        ),
    )


KYC_REPORT_FILTERS: frozenset[str] = frozenset()
KYC_REPORT = register_report(
    "kyc-report", "KYC report", "KycReport", kyc_report_table, page="KycReportView.report"
)
