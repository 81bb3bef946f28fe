"""Compliance: clients by KYC status, client documents expiring, KYC cases waiting per reviewer.

Filtered by the client's branch and relationship manager (``agent``). Expiry counts the newest
version of each client document type only (a superseded passport no longer matters).
"""

from __future__ import annotations

from datetime import timedelta

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from app.clients.models import KYC_STATUSES, Client
from app.core.localtime import format_local
from app.dashboards.base import ChartSpec, Dashboard, label_of, today
from app.dashboards.charts import Bar, Chart
from app.dashboards.client_summary import kyc_status_counts
from app.dashboards.filters import DashboardFilters, person_name
from app.dashboards.links import EQ, REL, day_range, list_url
from app.documents.models import Document
from app.extensions import db
from app.kyc.models import KycCase

EXPIRY_BUCKETS = (
    ("Expired", None, -1),
    ("Next 30 days", 0, 30),
    ("31-60 days", 31, 60),
    ("61-90 days", 61, 90),
)
"""(label, first day, last day) counted from today; ``None`` is open-ended."""


def _client_where(filters: DashboardFilters) -> list:
    clauses = []
    if filters.branch is not None:
        clauses.append(Client.branch_id == filters.branch)
    if filters.agent is not None:
        clauses.append(Client.relationship_manager_id == filters.agent)
    return clauses


def _drill_down_conditions(filters: DashboardFilters) -> list:
    conditions = []
    if filters.branch is not None:
        conditions.append(("branch_id", EQ, filters.branch))
    if filters.agent is not None:
        conditions.append(("agent_id", EQ, filters.agent))
    return conditions


def kyc_status(filters: DashboardFilters) -> Chart:
    counts = kyc_status_counts(filters.branch, filters.agent)
    common = []
    if filters.branch is not None:
        common.append(("branch", REL, filters.branch))
    if filters.agent is not None:
        common.append(("relationship_manager", REL, filters.agent))
    bars = [
        Bar(
            label_of(status),
            counts.get(status, 0),
            counts.get(status, 0),
            list_url("ClientView", [("kyc_status", EQ, status), *common]),
            f"{label_of(status)}: {counts.get(status, 0)} clients",
        )
        for status in KYC_STATUSES
    ]
    return Chart(
        key="kyc-status",
        title="Clients by KYC status",
        value_title="Clients",
        bars=bars,
        columns=("KYC status", "Clients"),
        rows=[(bar.label, bar.count) for bar in bars],
        note="Every client as it stands today.",
    )


def documents_expiring(filters: DashboardFilters) -> Chart:
    day = today()
    newer = aliased(Document)
    current = ~(
        select(newer.id)
        .where(
            newer.client_id == Document.client_id,
            newer.doc_type == Document.doc_type,
            newer.version > Document.version,
        )
        .exists()
    )

    def window(first: int | None, last: int):
        upper = Document.expires_on <= day + timedelta(days=last)
        if first is None:
            return upper
        return and_(Document.expires_on >= day + timedelta(days=first), upper)

    counts = db.session.execute(
        select(*(func.count(case((window(first, last), 1))) for _, first, last in EXPIRY_BUCKETS))
        .select_from(Document)
        .join(Client, Client.id == Document.client_id)
        .where(
            current,
            Document.expires_on.is_not(None),
            Document.expires_on <= day + timedelta(days=EXPIRY_BUCKETS[-1][2]),
            *_client_where(filters),
        )
    ).one()
    bars = []
    for (label, first, last), count in zip(EXPIRY_BUCKETS, counts, strict=True):
        first_day = day + timedelta(days=first) if first is not None else None
        url = list_url(
            "ClientDocumentListView",
            [
                ("current", EQ, "y"),
                *day_range("expires_on", first_day, day + timedelta(days=last)),
                *_drill_down_conditions(filters),
            ],
        )
        bars.append(Bar(label, count, count, url, f"{label}: {count} documents"))
    return Chart(
        key="documents-expiring",
        title="Client documents expiring",
        value_title="Documents",
        bars=bars,
        columns=("Expiry", "Documents"),
        rows=[(bar.label, bar.count) for bar in bars],
        note=f"Newest version of each client document type, counted from {day} (UTC).",
    )


def cases_waiting(filters: DashboardFilters) -> Chart:
    found = db.session.execute(
        select(
            KycCase.reviewer_id,
            User.first_name,
            User.last_name,
            User.username,
            func.count(KycCase.id),
            func.min(KycCase.submitted_at),
        )
        .select_from(KycCase)
        .join(Client, Client.id == KycCase.client_id)
        .outerjoin(User, User.id == KycCase.reviewer_id)
        .where(KycCase.status == "in_review", *_client_where(filters))
        .group_by(KycCase.reviewer_id, User.first_name, User.last_name, User.username)
        .order_by(func.count(KycCase.id).desc(), User.username)
    ).all()
    bars, rows = [], []
    for reviewer_id, first, last, username, count, oldest in found:
        name = person_name(first, last, username) if reviewer_id is not None else "(unassigned)"
        url = list_url(
            "ClientKycCaseListView",
            [
                ("status", EQ, "in_review"),
                ("reviewer_id", EQ, reviewer_id),
                *_drill_down_conditions(filters),
            ],
        )
        bars.append(Bar(name, count, count, url, f"{name}: {count} cases waiting"))
        rows.append((name, count, format_local(oldest) if oldest else None))
    return Chart(
        key="kyc-cases-waiting",
        title="KYC cases waiting per reviewer",
        value_title="Cases in review",
        bars=bars,
        columns=("Reviewer", "Cases in review", "Oldest submitted"),
        rows=rows,
        note="Cases submitted and not yet decided.",
        orientation="h",
    )


COMPLIANCE = Dashboard(
    key="compliance",
    title="Compliance dashboard",
    menu="KYC overview",
    resource="ComplianceDashboard",
    filters=("branch", "agent"),
    charts=(
        ChartSpec("kyc-status", "Clients by KYC status", kyc_status),
        ChartSpec("documents-expiring", "Client documents expiring", documents_expiring),
        ChartSpec("kyc-cases-waiting", "KYC cases waiting per reviewer", cases_waiting),
    ),
    intro="Clients of the chosen branch and relationship manager (agent), as they stand today.",
)
