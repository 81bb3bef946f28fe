"""The counts of the home page, in one statement for every section a user sees.

Each section adds a one-row aggregate (``SELECT count(...) ...``) over its desk's rows, narrowed
to whose rows it counts (the user's own, their branch's) through the indexes of those columns;
the aggregates are cross-joined into a single statement, read through the session so row scoping
applies as on every list. Pipelines that run to millions of rows (a branch's leads by status, its
instalments) are read from the dashboards' summaries, which hold the same numbers exactly.

Days are the user's days: "today" and "this week" begin at midnight in their branch's time
zone (``app.core.localtime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select, true
from sqlalchemy.orm import aliased

from app.billing.models import Invoice
from app.clients.models import Client
from app.dashboards.lending_summary import InstalmentSummary
from app.dashboards.summary import LEAD_MEASURES, LeadSummary
from app.documents.models import Document
from app.extensions import db
from app.home import health
from app.kyc.models import KycCase
from app.leads.models import OPEN_LEAD_STATUSES, Lead
from app.lending.jobs import stale_stage, stale_stage_days
from app.lending.models import LoanApplication
from app.security.roles import SCOPE_BRANCH, SCOPE_OWN
from app.security.scoping import Actor
from app.tasks.models import OPEN_TASK_STATUSES, Task

EXPIRY_DAYS, EXPIRY_SOON_DAYS = 30, 7
"""Documents expiring within 30 days (and of them within 7), as the KYC expiry job alerts."""
OUTSTANDING_INVOICE = ("issued", "partially_paid", "overdue")


@dataclass(frozen=True)
class Day:
    """The moments the sections count from: now, the end of today and this week's Monday, in
    the user's time zone (UTC when none is given)."""

    now: datetime
    zone: ZoneInfo = ZoneInfo("UTC")

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    @property
    def end_of_today(self) -> datetime:
        midnight = datetime.combine(self.today + timedelta(days=1), time(), tzinfo=self.zone)
        return midnight.astimezone(UTC)

    @property
    def monday(self) -> date:
        return self.today - timedelta(days=self.today.weekday())


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


# ---- each section's counts (one row each) ---------------------------------------------------


def tasks_where(actor: Actor, day: Day) -> tuple:
    return (
        Task.assignee_id == actor.user_id,
        Task.status.in_(OPEN_TASK_STATUSES),
        Task.due_at < day.end_of_today,
    )


def _lead_owner(actor: Actor, scope: str):
    if scope == SCOPE_BRANCH:
        return Lead.branch_id == actor.branch_id
    return Lead.assigned_agent_id == actor.user_id


def follow_ups_where(actor: Actor, scope: str, day: Day) -> tuple:
    return (
        _lead_owner(actor, scope),
        Lead.next_follow_up_at < day.end_of_today,
        Lead.status.in_(OPEN_LEAD_STATUSES),
    )


def _application_owner(actor: Actor, scope: str):
    if scope == SCOPE_BRANCH:
        return LoanApplication.branch_id == actor.branch_id
    return LoanApplication.bdm_id == actor.user_id


def _client_owner(actor: Actor, scope: str):
    if scope == SCOPE_BRANCH:
        return Client.branch_id == actor.branch_id
    if scope == SCOPE_OWN:
        return Client.relationship_manager_id == actor.user_id
    return true()


def _current_document():
    newer = aliased(Document)
    return ~(
        select(newer.id)
        .where(
            newer.client_id == Document.client_id,
            newer.doc_type == Document.doc_type,
            newer.version > Document.version,
        )
        .exists()
    )


def _counts(key: str, actor: Actor, scope: str, day: Day) -> Select | None:
    """The one-row aggregate of section ``key``; its columns are named ``<key>_<name>``."""
    now = day.now
    if key == "tasks":
        return select(
            func.count(case((Task.due_at < now, 1))).label("tasks_overdue"),
            func.count(case((Task.due_at >= now, 1))).label("tasks_today"),
        ).where(*tasks_where(actor, day))
    if key == "follow_ups":
        due = Lead.next_follow_up_at
        return select(
            func.count(case((due < now, 1))).label("follow_ups_overdue"),
            func.count(case((due >= now, 1))).label("follow_ups_today"),
        ).where(*follow_ups_where(actor, scope, day))
    if key == "leads":
        s = LeadSummary
        owner = (
            s.branch_id == actor.branch_id if scope == SCOPE_BRANCH else s.agent_id == actor.user_id
        )
        return select(
            *(
                func.coalesce(func.sum(getattr(s, measure)), 0).label(f"leads_{measure}")
                for measure in LEAD_MEASURES
            )
        ).where(s.grain == "m", owner)
    if key == "kyc":
        return select(func.count(KycCase.id).label("kyc_waiting")).where(
            KycCase.reviewer_id == actor.user_id, KycCase.status == "in_review"
        )
    if key == "applications":
        return select(func.count(LoanApplication.id).label("applications_stale")).where(
            _application_owner(actor, scope), stale_stage(day.today, stale_stage_days())
        )
    if key == "instalments":
        # From the instalment summary's day rows (exact, a handful of rows per day) rather
        # than the instalments themselves: a branch's schedules run to millions of rows.
        i = InstalmentSummary
        owner = (
            i.branch_id == actor.branch_id if scope == SCOPE_BRANCH else i.bdm_id == actor.user_id
        )
        return select(
            func.coalesce(func.sum(i.n), 0).label("instalments_late"),
            func.coalesce(func.sum(i.amount_cents), 0).label("instalments_cents"),
        ).where(
            i.grain == "d",
            i.day >= day.monday,
            i.day < day.today,
            i.timeliness == "unpaid",
            owner,
        )
    if key == "invoices":
        return (
            select(
                func.count(Invoice.id).label("invoices_overdue"),
                func.coalesce(func.sum(Invoice.total - Invoice.amount_paid), 0).label(
                    "invoices_balance"
                ),
            )
            .join(Client, Client.id == Invoice.client_id)
            .where(
                Invoice.status.in_(OUTSTANDING_INVOICE),
                Invoice.due_date < day.today,
                _client_owner(actor, scope),
            )
        )
    if key == "documents":
        expires = Document.expires_on
        return (
            select(
                func.count(Document.id).label("documents_expiring"),
                func.count(
                    case((expires <= day.today + timedelta(days=EXPIRY_SOON_DAYS), 1))
                ).label("documents_soon"),
            )
            .join(Client, Client.id == Document.client_id)
            .where(
                expires > day.today,
                expires <= day.today + timedelta(days=EXPIRY_DAYS),
                _current_document(),
                _client_owner(actor, scope),
            )
        )
    if key == "health":
        return health.counts()
    return None


def read_counts(wanted: dict[str, str], actor: Actor, day: Day) -> dict[str, object]:
    """Every count of the sections ``wanted`` in one statement (their aggregates cross-joined)."""
    parts = [
        query.subquery(f"home_{key}")
        for key, scope in wanted.items()
        if (query := _counts(key, actor, scope, day)) is not None
    ]
    if not parts:
        return {}
    statement = select(*(column for part in parts for column in part.c)).select_from(parts[0])
    for part in parts[1:]:
        statement = statement.join(part, true())
    return dict(db.session.execute(statement).one()._mapping)
