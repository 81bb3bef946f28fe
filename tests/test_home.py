"""The home page (FAB's index): each role's sections, the right rows for the right person, and
numbers whose links open exactly the rows counted. On PostgreSQL."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.billing.models import Invoice
from app.clients.models import Client
from app.comms.models import Notification
from app.core.periodic_runs import PeriodicRun
from app.documents.models import Document
from app.extensions import db
from app.home.audience import sections_for_role
from app.home.services import build_home
from app.kyc.models import KycCase
from app.leads.models import LeadImport
from app.lending.models import LoanInstalment
from app.security.roles import ROLES
from app.security.scoping import acting_as, actor_for_user
from app.tasks.models import Task
from tests.lending_support import make_application
from tests.support import login, make_branch, make_lead, make_staff

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
"""A Wednesday noon (UTC): "this week" has two days before today, "later today" twelve hours."""
TODAY = NOW.date()

EXPECTED_SECTIONS = {
    "Admin": {"tasks", "health"},
    "Manager": {
        "tasks",
        "follow_ups",
        "leads",
        "applications",
        "instalments",
        "invoices",
        "documents",
    },
    "Agent": {"tasks", "follow_ups", "leads", "invoices", "documents"},
    "Compliance": {"tasks", "kyc", "documents"},
    "LoanOfficer": {"tasks", "applications", "instalments"},
    "Broker": {"tasks"},
    "Support": {"tasks"},
    "Auditor": {"tasks"},
}


def home_of(app, staff, now: datetime = NOW) -> dict:
    """The home page of ``staff`` at ``now``: section key -> {"figures": {label: (count, url)},
    "rows": [(text, url, note)], "notes": [...]}, built as their request would build it."""
    with app.test_request_context(), acting_as(actor_for_user(staff.user_id)) as actor:
        page = build_home(actor, now)
    return {
        section.key: {
            "figures": {f.label: (f.count, f.url) for f in section.figures},
            "notes": section.notes + [f.note for f in section.figures if f.note],
            "rows": [(r.text, r.url, r.note) for r in section.rows],
            "clear": section.clear,
        }
        for section in page.sections
    }


def count(page: dict, key: str, label: str) -> int:
    return page[key]["figures"][label][0]


def url(page: dict, key: str, label: str) -> str:
    return page[key]["figures"][label][1]


def opened(app, staff, address: str) -> str:
    """The list page ``address`` as ``staff`` sees it (signed in through the login form)."""
    client = app.test_client()
    assert login(client, staff.user.username).status_code == 302
    response = client.get(address)
    assert response.status_code == 200, address
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def world(pg_app):
    mumbai, sydney = make_branch("MUMH"), make_branch("SYDH", tz="Australia/Sydney")
    people = {
        "agent": make_staff("Agent", mumbai),
        "agent2": make_staff("Agent", mumbai),
        "agent_syd": make_staff("Agent", sydney),
        "manager": make_staff("Manager", mumbai),
        "officer": make_staff("Compliance", mumbai),
        "officer2": make_staff("Compliance", mumbai),
        "bdm": make_staff("LoanOfficer", mumbai),
        "bdm2": make_staff("LoanOfficer", mumbai),
        "bdm_syd": make_staff("LoanOfficer", sydney),
        "admin": make_staff("Admin", mumbai),
        "broker": make_staff("Broker", mumbai),
        "auditor": make_staff("Auditor", mumbai),
        "support": make_staff("Support", mumbai),
    }
    db.session.commit()
    return people


def test_each_role_sees_the_sections_of_its_desks_only(pg_app, world):
    for role in ROLES:
        assert set(sections_for_role(role)) == EXPECTED_SECTIONS[role], role
    by_role = {
        "Admin": "admin",
        "Manager": "manager",
        "Agent": "agent",
        "Compliance": "officer",
        "LoanOfficer": "bdm",
        "Broker": "broker",
        "Support": "support",
        "Auditor": "auditor",
    }
    every = set().union(*EXPECTED_SECTIONS.values())
    for role, name in by_role.items():
        page = opened(pg_app, world[name], "/")
        shown = set(re.findall(r'id="home-([a-z_]+)" data-attention', page))
        assert shown == EXPECTED_SECTIONS[role], role
        assert not {f'id="home-{key}"' for key in every - shown} & set(
            re.findall(r'id="[^"]+"', page)
        )


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(pg_app):
    response = pg_app.test_client().get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/")


def test_someone_with_nothing_due_is_told_they_are_clear(pg_app, world):
    page = opened(pg_app, world["agent"], "/")
    assert 'id="home-clear"' in page and "You are clear" in page
    assert "No task due today or overdue." in page
    assert "No follow-up due today or overdue." in page


def _task(staff, title: str, due: datetime, status: str = "open") -> Task:
    task = Task(
        title=title,
        assignee_id=staff.user_id,
        created_by_id=staff.user_id,
        branch_id=staff.branch_id,
        due_at=due,
        status=status,
        priority="high",
        completed_at=due if status == "done" else None,
    )
    db.session.add(task)
    return task


def test_my_tasks_count_only_mine_and_the_link_opens_them(pg_app, world):
    agent, agent2 = world["agent"], world["agent2"]
    _task(agent, "Call Asha back", NOW - timedelta(hours=3))
    _task(agent, "Send the brochure", NOW + timedelta(hours=2))
    _task(agent, "Tomorrow's call", NOW + timedelta(days=1))
    _task(agent, "Finished already", NOW - timedelta(hours=5), status="done")
    _task(agent2, "Agent two's overdue", NOW - timedelta(hours=1))
    db.session.commit()

    page = home_of(pg_app, agent)
    assert count(page, "tasks", "Overdue") == 1
    assert count(page, "tasks", "Due later today") == 1
    assert [text for text, _, _ in page["tasks"]["rows"]] == ["Call Asha back", "Send the brochure"]
    assert page["tasks"]["rows"][0][2].startswith("overdue, due 02 Dec 2026 14:30 IST")  # Mumbai
    assert count(home_of(pg_app, agent2), "tasks", "Overdue") == 1

    overdue = opened(pg_app, agent, url(page, "tasks", "Overdue"))
    assert "Call Asha back" in overdue
    assert "Send the brochure" not in overdue and "Agent two's overdue" not in overdue
    assert "Finished already" not in overdue
    later = opened(pg_app, agent, url(page, "tasks", "Due later today"))
    assert "Send the brochure" in later and "Call Asha back" not in later
    assert "Tomorrow's call" not in later


def test_leads_and_follow_ups_are_the_agents_own_and_the_managers_branch(pg_app, world):
    agent, agent2, syd = world["agent"], world["agent2"], world["agent_syd"]
    make_lead(agent, first_name="Overdueone", next_follow_up_at=NOW - timedelta(days=1))
    make_lead(agent, first_name="Latertoday", next_follow_up_at=NOW + timedelta(hours=1))
    make_lead(agent, first_name="Nextweek", next_follow_up_at=NOW + timedelta(days=7))
    make_lead(agent, first_name="Contactedone", status="contacted")
    make_lead(agent2, first_name="Othersoverdue", next_follow_up_at=NOW - timedelta(hours=2))
    make_lead(syd, first_name="Sydneyoverdue", next_follow_up_at=NOW - timedelta(hours=2))
    db.session.commit()

    mine = home_of(pg_app, agent)
    assert count(mine, "leads", "New") == 3 and count(mine, "leads", "Contacted") == 1
    assert count(mine, "follow_ups", "Overdue") == 1
    assert count(mine, "follow_ups", "Due later today") == 1
    assert [text.split()[0] for text, _, _ in mine["follow_ups"]["rows"]] == [
        "Overdueone",
        "Latertoday",
    ]
    theirs = home_of(pg_app, agent2)
    assert count(theirs, "leads", "New") == 1 and count(theirs, "follow_ups", "Overdue") == 1

    branch = home_of(pg_app, world["manager"])
    assert count(branch, "leads", "New") == 4 and count(branch, "leads", "Contacted") == 1
    assert count(branch, "follow_ups", "Overdue") == 2
    assert count(branch, "follow_ups", "Due later today") == 1

    new_leads = opened(pg_app, agent, url(mine, "leads", "New"))
    assert all(name in new_leads for name in ("Overdueone", "Latertoday", "Nextweek"))
    assert "Contactedone" not in new_leads and "Othersoverdue" not in new_leads
    overdue = opened(pg_app, world["manager"], url(branch, "follow_ups", "Overdue"))
    assert "Overdueone" in overdue and "Othersoverdue" in overdue
    assert "Sydneyoverdue" not in overdue and "Latertoday" not in overdue


def _client(agent, name: str) -> Client:
    client = Client(name=name, branch_id=agent.branch_id, relationship_manager_id=agent.user_id)
    db.session.add(client)
    db.session.flush()
    return client


def test_kyc_cases_waiting_for_each_officer_with_their_age(pg_app, world):
    agent, officer, officer2 = world["agent"], world["officer"], world["officer2"]
    for name, reviewer, waited in (
        ("Waited Three Days", officer, timedelta(days=3)),
        ("Waited Five Hours", officer, timedelta(hours=5)),
        ("Waits Elsewhere", officer2, timedelta(days=1)),
    ):
        db.session.add(
            KycCase(
                client_id=_client(agent, name).id,
                status="in_review",
                reviewer_id=reviewer.user_id,
                submitted_by_id=agent.user_id,
                submitted_at=NOW - waited,
                submissions=1,
            )
        )
    db.session.add(KycCase(client_id=_client(agent, "Still Pending").id, status="pending"))
    db.session.commit()

    page = home_of(pg_app, officer)
    assert count(page, "kyc", "Waiting for my review") == 2
    rows = page["kyc"]["rows"]
    assert [text.split(": ")[1] for text, _, _ in rows] == [
        "Waited Three Days",
        "Waited Five Hours",
    ]
    assert [note for _, _, note in rows] == ["waiting 3 days", "waiting 5 hours"]
    assert count(home_of(pg_app, officer2), "kyc", "Waiting for my review") == 1

    listed = opened(pg_app, officer, url(page, "kyc", "Waiting for my review"))
    assert "Waited Three Days" in listed and "Waited Five Hours" in listed
    assert "Waits Elsewhere" not in listed and "Still Pending" not in listed


def test_stale_applications_and_late_instalments_of_the_bdm_and_the_branch(pg_app, world):
    bdm, bdm2, bdm_syd = world["bdm"], world["bdm2"], world["bdm_syd"]
    stale = make_application(bdm, stage="assessment", stage_changed_at=NOW - timedelta(days=20))
    fresh = make_application(bdm, stage="assessment", stage_changed_at=NOW - timedelta(days=2))
    make_application(bdm, stage="settled", stage_changed_at=NOW - timedelta(days=90))
    make_application(bdm2, stage="inquiry", stage_changed_at=NOW - timedelta(days=15))
    make_application(bdm_syd, stage="inquiry", stage_changed_at=NOW - timedelta(days=30))
    loan = make_application(bdm, stage="settled", stage_changed_at=NOW - timedelta(days=60))
    loan2 = make_application(bdm2, stage="settled", stage_changed_at=NOW - timedelta(days=60))
    for number, (application, due, status) in enumerate(
        (
            (loan, TODAY - timedelta(days=1), "late"),  # Tuesday: late this week
            (loan, TODAY - timedelta(days=7), "late"),  # last week
            (loan, TODAY - timedelta(days=2), "paid"),  # Monday, paid
            (loan, TODAY, "scheduled"),  # due today: not late yet
            (loan2, TODAY - timedelta(days=2), "partial"),
        ),
        start=1,
    ):
        paid = Decimal("100.00") if status == "paid" else Decimal("0.00")
        db.session.add(
            LoanInstalment(
                application_id=application.id,
                number=number,
                due_date=due,
                principal=Decimal("100.00"),
                interest=Decimal("0.00"),
                total=Decimal("100.00"),
                paid_principal=paid,
                status=status,
                paid_on=due if status == "paid" else None,
            )
        )
    db.session.commit()

    mine = home_of(pg_app, bdm)
    assert count(mine, "applications", "In the same stage for 14+ days") == 1
    assert count(mine, "instalments", "Late this week") == 1
    assert any(note.endswith("; 100.00 due") for note in mine["instalments"]["notes"])
    assert count(home_of(pg_app, bdm2), "applications", "In the same stage for 14+ days") == 1
    branch = home_of(pg_app, world["manager"])
    assert count(branch, "applications", "In the same stage for 14+ days") == 2
    assert count(branch, "instalments", "Late this week") == 2

    listed = opened(pg_app, bdm, url(mine, "applications", "In the same stage for 14+ days"))
    assert stale.reference in listed and fresh.reference not in listed
    late = opened(pg_app, bdm, url(mine, "instalments", "Late this week"))
    assert loan.reference in late and loan2.reference not in late
    assert late.count(f">{loan.reference}<") == 1


def test_overdue_invoices_and_expiring_documents_of_the_agents_clients(pg_app, world):
    agent, agent2 = world["agent"], world["agent2"]
    mine, theirs = _client(agent, "Mine Client"), _client(agent2, "Their Client")
    for number, client, due, status, paid in (
        ("INV-H-1", mine, TODAY - timedelta(days=5), "overdue", "250.00"),
        ("INV-H-2", mine, TODAY + timedelta(days=5), "issued", "0.00"),
        ("INV-H-3", mine, TODAY - timedelta(days=9), "paid", "1000.00"),
        ("INV-H-4", theirs, TODAY - timedelta(days=1), "issued", "0.00"),
    ):
        db.session.add(
            Invoice(
                number=number,
                client_id=client.id,
                issue_date=TODAY - timedelta(days=30),
                due_date=due,
                status=status,
                subtotal=Decimal("1000.00"),
                total=Decimal("1000.00"),
                amount_paid=Decimal(paid),
            )
        )
    for client, name, version, expires in (
        (mine, "soon.pdf", 1, TODAY + timedelta(days=5)),
        (mine, "later-v1.pdf", 1, TODAY + timedelta(days=3)),  # superseded by v2
        (mine, "later-v2.pdf", 2, TODAY + timedelta(days=20)),
        (mine, "far.pdf", 1, TODAY + timedelta(days=90)),
        (theirs, "theirs.pdf", 1, TODAY + timedelta(days=10)),
    ):
        db.session.add(
            Document(
                doc_type={"soon.pdf": "pan_card", "far.pdf": "address_proof"}.get(name, "passport"),
                client_id=client.id,
                original_name=name,
                storage_backend="local",
                storage_key=f"test/{uuid.uuid4().hex}",
                content_type="application/pdf",
                size_bytes=10,
                sha256="0" * 64,
                version=version,
                expires_on=expires,
                uploaded_by_id=agent.user_id,
            )
        )
    db.session.commit()

    page = home_of(pg_app, agent)
    assert count(page, "invoices", "Overdue") == 1
    assert "750.00 still to be paid" in page["invoices"]["notes"]
    assert count(page, "documents", "Expiring in 7 days") == 1
    assert count(page, "documents", "Expiring in 30 days") == 2
    assert count(home_of(pg_app, world["manager"]), "invoices", "Overdue") == 2
    assert count(home_of(pg_app, world["manager"]), "documents", "Expiring in 30 days") == 3
    assert count(home_of(pg_app, world["officer"]), "documents", "Expiring in 30 days") == 3

    invoices = opened(pg_app, agent, url(page, "invoices", "Overdue"))
    assert "INV-H-1" in invoices
    assert not {"INV-H-2", "INV-H-3", "INV-H-4"} & set(re.findall(r"INV-H-\d", invoices))
    documents = opened(pg_app, agent, url(page, "documents", "Expiring in 30 days"))
    assert "soon.pdf" in documents and "later-v2.pdf" in documents
    assert "later-v1.pdf" not in documents and "far.pdf" not in documents
    assert "theirs.pdf" not in documents


def test_admin_sees_the_outbox_backlog_failed_imports_and_the_scheduler(pg_app, world, monkeypatch):
    from app.core import scheduler

    admin = world["admin"]
    for n, status in enumerate(("pending", "pending", "failed", "sent")):
        db.session.add(
            Notification(
                idempotency_key=f"home-test:{n}",
                channel="email",
                kind="test",
                recipient_user_id=world["agent"].user_id,
                subject=f"Outbox {status} {n}",
                body="-",
                status=status,
            )
        )
    db.session.add(
        LeadImport(
            file_name="broken-list.csv",
            file_format="csv",
            file_size=10,
            file_sha256="0" * 64,
            status="failed",
            created_by_id=world["agent"].user_id,
            branch_id=world["agent"].branch_id,
        )
    )
    db.session.commit()

    page = home_of(pg_app, admin)
    assert "The scheduler has not run any periodic job yet." in page["health"]["notes"]
    assert not page["health"]["clear"]
    assert "All systems normal." not in opened(pg_app, admin, "/")

    def fake_job(func):
        if func == "app.kyc.jobs.run_kyc_expiry":
            raise RuntimeError("storage offline")

    monkeypatch.setattr(scheduler, "run_job", fake_job)
    scheduler.run_recorded("dispatch-outbox")
    with pytest.raises(RuntimeError):
        scheduler.run_recorded("kyc-expiry")
    assert db.session.get(PeriodicRun, "kyc-expiry").error == "RuntimeError: storage offline"

    page = home_of(pg_app, admin, now=datetime.now(UTC))
    assert count(page, "health", "Notifications waiting to be sent") == 2
    assert count(page, "health", "Notifications failed") == 1
    assert count(page, "health", "Lead imports failed") == 1
    assert count(page, "health", "Periodic jobs whose last run failed") == 1
    assert "kyc-expiry" in page["health"]["notes"]
    assert count(page, "health", "Periodic jobs late") == 0
    assert any(
        note.startswith("Last scheduler run: kyc-expiry") for note in page["health"]["notes"]
    )
    later = home_of(pg_app, admin, now=datetime.now(UTC) + timedelta(minutes=10))
    assert count(later, "health", "Periodic jobs late") == 1  # the every-minute outbox dispatch

    failed = opened(pg_app, admin, url(page, "health", "Notifications failed"))
    assert "Outbox failed 2" in failed and "Outbox pending 0" not in failed
    imports = opened(pg_app, admin, url(page, "health", "Lead imports failed"))
    assert "broken-list.csv" in imports
    jobs = opened(pg_app, admin, "/jobs/")
    assert "storage offline" in jobs and "dispatch-outbox" in jobs
    # The agent's home has no system health.
    assert "health" not in home_of(pg_app, world["agent"])


def test_with_redis_the_admin_sees_rqs_failed_jobs(pg_app, world, monkeypatch):
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from tests.support import REDIS_TEST_URL

    connection = Redis.from_url(REDIS_TEST_URL)
    connection.flushdb()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    job = Queue("default", connection=connection).enqueue("app.core.jobs.run_job", "x.y")
    FailedJobRegistry("default", connection=connection).add(job, ttl=600, exc_string="boom")
    try:
        page = home_of(pg_app, world["admin"])
        assert count(page, "health", "Failed background jobs (RQ)") == 1
        assert "Lead imports failed" not in page["health"]["figures"]
        assert url(page, "health", "Failed background jobs (RQ)").startswith("/jobs/")
    finally:
        connection.flushdb()


def test_a_member_of_staff_with_two_roles_gets_both_desks_counted_the_broader_way():
    from app.home.audience import sections_for
    from app.security.scoping import Actor

    both = sections_for(Actor(1, frozenset({"Agent", "Manager"}), 1))
    assert set(both) == EXPECTED_SECTIONS["Manager"]
    assert both["leads"] == "branch" and both["follow_ups"] == "branch"
    desk_and_review = sections_for(Actor(1, frozenset({"Agent", "Compliance"}), 1))
    assert set(desk_and_review) == EXPECTED_SECTIONS["Agent"] | {"kyc"}
    assert desk_and_review["leads"] == "own" and desk_and_review["documents"] == "all"
    assert list(desk_and_review) == ["tasks", "follow_ups", "leads", "kyc", "invoices", "documents"]
    assert sections_for(Actor(1, frozenset(), None)) == {}


def test_today_is_the_users_day_in_their_branchs_zone():
    """At 20:00 UTC on 6 December it is already 7 December in Sydney: a Sydney user's "today"
    ends at Sydney's midnight, a UTC user's at UTC's."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from app.home.counts import Day

    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    sydney = Day(now, ZoneInfo("Australia/Sydney"))
    assert sydney.today == date(2026, 12, 7)
    assert sydney.end_of_today == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)  # AEDT, UTC+11
    assert sydney.monday == date(2026, 12, 7)
    assert Day(now).today == date(2026, 12, 6)
    assert Day(now).end_of_today == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
