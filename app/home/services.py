"""The home page as it is shown: each section's numbers, each with the URL of the list that
shows exactly its rows (the list's own ``_flt_`` filter arguments, ``app.dashboards.links``), and
the first few rows of the sections that list some (a bounded, ordered ``LIMIT``, read only when
the section has any). The counts themselves come from ``app.home.counts``, in one statement.

Times are shown in the user's branch's time zone, as on every list of the application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import url_for
from sqlalchemy import select

from app.clients.models import Client
from app.core.forms import display_choice, display_money
from app.core.localtime import format_local, zone_label, zone_of_user
from app.dashboards.links import EQ, IN, LT, REL, day_range, instant_range, list_url
from app.extensions import db
from app.home import health
from app.home.audience import sections_for
from app.home.counts import (
    EXPIRY_DAYS,
    EXPIRY_SOON_DAYS,
    OUTSTANDING_INVOICE,
    Day,
    follow_ups_where,
    naive,
    read_counts,
    tasks_where,
)
from app.kyc.models import KycCase
from app.leads.models import LEAD_STATUSES, OPEN_LEAD_STATUSES, Lead
from app.lending.jobs import stale_stage_before, stale_stage_days
from app.lending.models import OPEN_STAGES
from app.security.roles import SCOPE_BRANCH, SCOPE_OWN
from app.security.scoping import Actor
from app.tasks.models import OPEN_TASK_STATUSES, Task

FIRST_FEW = 5
"""Rows listed under a section's numbers (the numbers link to all of them)."""


@dataclass(frozen=True)
class Figure:
    """One number of a section and the list of the rows behind it."""

    label: str
    count: int
    url: str
    urgent: bool = False
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One of the first few rows of a section."""

    text: str
    url: str
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    figures: list[Figure]
    rows: list[Row] = field(default_factory=list)
    clear_text: str = "Nothing waiting."
    notes: list[str] = field(default_factory=list)
    problems: int | None = None
    """How many things need attention; by default the sum of the urgent figures' counts
    (or of every figure when none is urgent)."""

    @property
    def attention(self) -> int:
        if self.problems is not None:
            return self.problems
        urgent = [f.count for f in self.figures if f.urgent]
        return sum(urgent) if urgent else sum(f.count for f in self.figures)

    @property
    def clear(self) -> bool:
        return self.attention == 0

    @property
    def empty(self) -> bool:
        """Nothing to show and nothing wrong: the section says so in words."""
        return self.clear and all(f.count == 0 for f in self.figures) and not self.rows


@dataclass
class HomePage:
    now: datetime
    sections: list[Section]
    zone: str = "UTC"
    """The time zone the page's times and days are in (the user's branch's)."""
    today: date | None = None

    @property
    def clear(self) -> bool:
        return all(section.clear for section in self.sections)


def age(since: datetime | None, now: datetime) -> str:
    """How long ago, in the largest whole unit: ``3 days``, ``5 hours``, ``12 minutes``."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "just now"


def when(moment: datetime | None) -> str:
    return format_local(moment) if moment else ""


# ---- each section as the page shows it ------------------------------------------------------


def _tasks(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    open_tasks = ("status", IN, list(OPEN_TASK_STATUSES))
    figures = [
        Figure(
            "Overdue",
            counts["tasks_overdue"],
            list_url("MyTasksView", [open_tasks, ("due_at", LT, naive(day.now))]),
            urgent=True,
        ),
        Figure(
            "Due later today",
            counts["tasks_today"],
            list_url(
                "MyTasksView", [open_tasks, *instant_range("due_at", day.now, day.end_of_today)]
            ),
            urgent=True,
        ),
    ]
    rows = []
    if counts["tasks_overdue"] or counts["tasks_today"]:
        found = db.session.execute(
            select(Task.id, Task.title, Task.due_at, Task.priority)
            .where(*tasks_where(actor, day))
            .order_by(Task.due_at, Task.id)
            .limit(FIRST_FEW)
        ).all()
        rows = [
            Row(
                title,
                url_for("TaskView.show", pk=pk),
                f"{'overdue, ' if due < day.now else ''}due {when(due)} · {display_choice(priority)}",
            )
            for pk, title, due, priority in found
        ]
    return Section("tasks", "My tasks", figures, rows, "No task due today or overdue.")


def _lead_owner_condition(actor: Actor, scope: str):
    if scope == SCOPE_BRANCH:
        return ("branch", REL, actor.branch_id)
    return ("assigned_agent", REL, actor.user_id)


def _follow_ups(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    common = [_lead_owner_condition(actor, scope), ("status", IN, list(OPEN_LEAD_STATUSES))]
    figures = [
        Figure(
            "Overdue",
            counts["follow_ups_overdue"],
            list_url("LeadView", [*common, ("next_follow_up_at", LT, naive(day.now))]),
            urgent=True,
        ),
        Figure(
            "Due later today",
            counts["follow_ups_today"],
            list_url(
                "LeadView",
                [*common, *instant_range("next_follow_up_at", day.now, day.end_of_today)],
            ),
            urgent=True,
        ),
    ]
    rows = []
    if counts["follow_ups_overdue"] or counts["follow_ups_today"]:
        found = db.session.execute(
            select(Lead.id, Lead.first_name, Lead.last_name, Lead.next_follow_up_at)
            .where(*follow_ups_where(actor, scope, day))
            .order_by(Lead.next_follow_up_at, Lead.id)
            .limit(FIRST_FEW)
        ).all()
        rows = [
            Row(
                f"{first} {last}",
                url_for("LeadView.show", pk=pk),
                f"{'overdue, ' if due < day.now else ''}due {when(due)}",
            )
            for pk, first, last, due in found
        ]
    title = "Branch lead follow-ups" if scope == SCOPE_BRANCH else "My lead follow-ups"
    return Section("follow_ups", title, figures, rows, "No follow-up due today or overdue.")


def _leads(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    owner = _lead_owner_condition(actor, scope)
    figures = [
        Figure(
            display_choice(status),
            int(counts[f"leads_n_{status}"]),
            list_url("LeadView", [owner, ("status", EQ, status)]),
        )
        for status in LEAD_STATUSES
    ]
    title = "Branch leads by status" if scope == SCOPE_BRANCH else "My leads by status"
    # How the pipeline stands, not something due: it never makes the day less clear.
    return Section("leads", title, figures, clear_text="No leads yet.", problems=0)


def _kyc(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    figures = [
        Figure(
            "Waiting for my review",
            counts["kyc_waiting"],
            list_url(
                "KycCaseView", [("status", EQ, "in_review"), ("reviewer", REL, actor.user_id)]
            ),
            urgent=True,
        )
    ]
    rows = []
    if counts["kyc_waiting"]:
        found = db.session.execute(
            select(KycCase.id, KycCase.submitted_at, Client.name)
            .join(Client, Client.id == KycCase.client_id)
            .where(KycCase.reviewer_id == actor.user_id, KycCase.status == "in_review")
            .order_by(KycCase.submitted_at, KycCase.id)
            .limit(FIRST_FEW)
        ).all()
        rows = [
            Row(
                f"Case #{pk}: {name}",
                url_for("KycCaseView.show", pk=pk),
                f"waiting {age(submitted, day.now)}" if submitted else "",
            )
            for pk, submitted, name in found
        ]
    section = Section(
        "kyc", "KYC cases waiting for me", figures, rows, "No KYC case waits for you."
    )
    section.notes.append("Oldest first; decide them in the KYC queue.")
    return section


def _applications(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    days = stale_stage_days()
    owner = (
        ("branch", REL, actor.branch_id) if scope == SCOPE_BRANCH else ("bdm", REL, actor.user_id)
    )
    figure = Figure(
        f"In the same stage for {days}+ days",
        counts["applications_stale"],
        list_url(
            "LoanApplicationView",
            [
                owner,
                ("stage", IN, list(OPEN_STAGES)),
                ("stage_changed_at", LT, naive(stale_stage_before(day.today, days))),
            ],
        ),
        urgent=True,
    )
    title = (
        "Branch loan applications not moving"
        if scope == SCOPE_BRANCH
        else "My loan applications not moving"
    )
    return Section("applications", title, [figure], clear_text="Every open application is moving.")


def _instalments(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    if scope == SCOPE_BRANCH:
        owner = ("branch_id", EQ, actor.branch_id)
    else:
        owner = ("bdm_id", EQ, actor.user_id)
    figure = Figure(
        "Late this week",
        counts["instalments_late"],
        list_url(
            "DueInstalmentListView",
            [
                ("timeliness", EQ, "unpaid"),
                *day_range("due_date", day.monday, day.today - timedelta(days=1)),
                owner,
            ],
        ),
        urgent=True,
        note=f"due since Monday {day.monday:%d %b}, not paid in full"
        + (
            f"; {display_money(Decimal(counts['instalments_cents']) / 100)} due"
            if counts["instalments_late"]
            else ""
        ),
    )
    return Section(
        "instalments", "Instalments", [figure], clear_text="No instalment late this week."
    )


def _client_drill_owner(actor: Actor, scope: str) -> list:
    if scope == SCOPE_BRANCH:
        return [("branch_id", EQ, actor.branch_id)]
    if scope == SCOPE_OWN:
        return [("agent_id", EQ, actor.user_id)]
    return []


def _invoices(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    balance = Decimal(counts["invoices_balance"] or 0).quantize(Decimal("0.01"))
    figure = Figure(
        "Overdue",
        counts["invoices_overdue"],
        list_url(
            "OutstandingInvoiceListView",
            [
                ("status", IN, list(OUTSTANDING_INVOICE)),
                ("due_date", LT, day.today),
                *_client_drill_owner(actor, scope),
            ],
        ),
        urgent=True,
        note=f"{display_money(balance)} still to be paid" if counts["invoices_overdue"] else "",
    )
    return Section("invoices", "Invoices", [figure], clear_text="No invoice overdue.")


def _documents(actor: Actor, scope: str, day: Day, counts: dict) -> Section:
    common = [("current", EQ, "y"), *_client_drill_owner(actor, scope)]
    tomorrow = day.today + timedelta(days=1)
    figures = [
        Figure(
            f"Expiring in {EXPIRY_SOON_DAYS} days",
            counts["documents_soon"],
            list_url(
                "ClientDocumentListView",
                [
                    *common,
                    *day_range(
                        "expires_on", tomorrow, day.today + timedelta(days=EXPIRY_SOON_DAYS)
                    ),
                ],
            ),
            urgent=True,
        ),
        Figure(
            f"Expiring in {EXPIRY_DAYS} days",
            counts["documents_expiring"],
            list_url(
                "ClientDocumentListView",
                [
                    *common,
                    *day_range("expires_on", tomorrow, day.today + timedelta(days=EXPIRY_DAYS)),
                ],
            ),
        ),
    ]
    section = Section(
        "documents",
        "Client documents expiring",
        figures,
        clear_text="No client document expires in the next 30 days.",
    )
    section.problems = counts["documents_expiring"]
    return section


BUILDERS = {
    "tasks": _tasks,
    "follow_ups": _follow_ups,
    "leads": _leads,
    "kyc": _kyc,
    "applications": _applications,
    "instalments": _instalments,
    "invoices": _invoices,
    "documents": _documents,
    "health": lambda actor, scope, day, counts: health.section(day.now, counts),
}


def build_home(actor: Actor, now: datetime) -> HomePage:
    """The home page of ``actor`` at ``now``: the sections their roles work, with their numbers."""
    day = Day(now, zone_of_user(actor.user_id))
    wanted = sections_for(actor)
    counts = read_counts(wanted, actor, day)
    sections = [BUILDERS[key](actor, scope, day, counts) for key, scope in wanted.items()]
    return HomePage(now, sections, zone_label(day.zone), day.today)
