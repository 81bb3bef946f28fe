"""Scheduled report e-mails: the Admin's screen refuses an unknown report or recipient by name,
and a due schedule delivers (real SMTP server) one e-mail per recipient with the report attached,
each built for the recipient's own rows; a second run, or two at once, sends nothing more."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.clients.models import Client
from app.clients.services import prepare_client
from app.comms.models import Notification
from app.comms.services import dispatch_outbox
from app.extensions import db
from app.reports.mailing import send_due_reports
from app.reports.models import ReportSchedule
from app.reports.schedules import latest_due
from tests.support import login, make_branch, make_staff

MONDAY_0705 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _client(staff, name: str, kyc_status: str = "pending") -> Client:
    record = prepare_client(
        Client(
            name=name,
            branch_id=staff.branch_id,
            relationship_manager_id=staff.user_id,
        )
    )
    record.kyc_status = kyc_status
    db.session.add(record)
    return record


@pytest.fixture
def branches(pg_app):
    mumbai, sydney = make_branch("MUM"), make_branch("SYD", tz="Australia/Sydney")
    people = {
        "mumbai_manager": make_staff("Manager", mumbai),
        "sydney_manager": make_staff("Manager", sydney),
        "officer": make_staff("Compliance", mumbai),
        "agent": make_staff("Agent", mumbai),
    }
    for n in range(3):
        _client(people["agent"], f"Mumbai client {n}")
    sydney_agent = make_staff("Agent", sydney)
    _client(sydney_agent, "Sydney client", kyc_status="verified")
    db.session.commit()
    return people


def _weekly_kyc_schedule(officer, fmt: str = "csv") -> ReportSchedule:
    schedule = ReportSchedule(
        name="Weekly KYC",
        report_key="kyc-report",
        file_format=fmt,
        frequency="weekly",
        weekday=0,
        hour=7,
        recipient_roles="Manager",
        filters="{}",
        active=True,
        created_at=CREATED,
    )
    schedule.recipients = [officer.user]
    db.session.add(schedule)
    db.session.commit()
    return schedule


def _branch_rows(message) -> dict[str, list[str]]:
    """The first part of the attached KYC report: branch -> counts."""
    attachment = next(message.iter_attachments())
    text = attachment.get_payload(decode=True).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Clients by KYC status and branch"]
    header, body = rows[1], rows[2 : rows.index([])]
    assert header[0] == "Branch" and header[-1] == "Total"
    return {row[0]: row[1:] for row in body}


def test_a_due_schedule_mails_each_recipient_their_own_figures_once(pg_app, branches, mailbox):
    people = branches
    _weekly_kyc_schedule(people["officer"])

    run = send_due_reports(MONDAY_0705)
    assert (run.schedules, run.emails, run.problems) == (1, 3, [])
    assert dispatch_outbox().sent == 3
    assert mailbox.wait_for(3)
    by_recipient = {m["To"]: m for m in mailbox.messages}
    emails = {name: people[name].user.email for name in people}
    assert set(by_recipient) == {
        emails["mumbai_manager"],
        emails["sydney_manager"],
        emails["officer"],
    }
    for message in mailbox.messages:
        assert message["Subject"] == "Weekly KYC: KYC report (2026-11-23)"
        attachment = next(message.iter_attachments())
        assert attachment.get_filename() == "kyc-report-20261123-0700.csv"
        assert attachment.get_content_type() == "text/csv"
        assert attachment.get_param("charset") == "utf-8"

    # Each built under the recipient's own row scoping.
    assert _branch_rows(by_recipient[emails["mumbai_manager"]]) == {
        "Branch MUM": ["3", "0", "0", "0", "3"]
    }
    assert _branch_rows(by_recipient[emails["sydney_manager"]]) == {
        "Branch SYD": ["0", "1", "0", "0", "1"]
    }
    assert set(_branch_rows(by_recipient[emails["officer"]])) == {"Branch MUM", "Branch SYD"}

    # A second run in the same week sends nothing, and nothing more reaches the server.
    again = send_due_reports(MONDAY_0705.replace(hour=9))
    assert (again.schedules, again.emails) == (0, 0)
    assert dispatch_outbox().sent == 0
    assert len(mailbox.messages) == 3
    schedule = db.session.scalar(select(ReportSchedule))
    assert schedule.last_run_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert schedule.last_sent_count == 3 and schedule.last_error is None

    # The next week's period goes out again.
    assert send_due_reports(datetime(2026, 11, 30, 7, 30, tzinfo=UTC)).emails == 3


def test_two_runs_at_once_send_each_recipient_one_email(pg_app, branches, mailbox):
    _weekly_kyc_schedule(branches["officer"], fmt="xlsx")
    results, errors = [], []

    def run():
        try:
            with pg_app.app_context():
                results.append(send_due_reports(MONDAY_0705).emails)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(results) == [0, 3]
    keys = db.session.scalars(
        select(Notification.idempotency_key).where(Notification.kind == "scheduled_report")
    ).all()
    assert len(keys) == len(set(keys)) == 3
    assert dispatch_outbox().sent == 3 and mailbox.wait_for(3)
    attachment = next(mailbox.messages[0].iter_attachments())
    assert attachment.get_filename().endswith(".xlsx")


def test_a_schedule_is_not_due_before_its_hour_or_for_a_period_before_it_was_made(pg_app, branches):
    schedule = _weekly_kyc_schedule(branches["officer"])
    schedule.created_at = datetime(2026, 11, 20, tzinfo=UTC)  # after last Monday's period
    db.session.commit()
    assert send_due_reports(datetime(2026, 11, 22, 23, 0, tzinfo=UTC)).emails == 0
    assert send_due_reports(MONDAY_0705.replace(hour=6, minute=59)).emails == 0
    assert db.session.scalar(select(func.count(Notification.id))) == 0
    assert send_due_reports(MONDAY_0705).emails == 3
    monthly = ReportSchedule(frequency="monthly", day_of_month=28, hour=6)
    assert latest_due(monthly, datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 2, 28, 6, tzinfo=UTC
    )
    daily = ReportSchedule(frequency="daily", hour=23)
    assert latest_due(daily, datetime(2026, 1, 1, 22, tzinfo=UTC)) == datetime(
        2025, 12, 31, 23, tzinfo=UTC
    )


# ---- the Admin's screen -----------------------------------------------------------------------

GOOD = {
    "name": "Weekly KYC to managers",
    "report_key": "kyc-report",
    "file_format": "pdf",
    "frequency": "weekly",
    "weekday": "0",
    "day_of_month": "",
    "hour": "7",
    "recipient_roles": ["Manager", "Compliance"],
    "filters": "",
    "active": "y",
}


@pytest.fixture
def admin(app):
    branch = make_branch()
    people = {role: make_staff(role, branch) for role in ("Admin", "Manager", "Agent")}
    db.session.commit()
    return people


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"report_key": "salaries"}, "Report key", "'salaries' is not a report"),
        ({"recipient_roles": ["Wizard"]}, "Recipient roles", "'Wizard' is not a role"),
        ({"recipient_roles": ["Agent"]}, "Recipient roles", "Agent may not read the KYC report"),
        ({"recipient_roles": []}, "Recipient roles", "choose at least one role"),
        ({"recipients": ["999999"], "recipient_roles": []}, "Staff", "Not a valid choice"),
        ({"hour": "24"}, "Hour", "between 0 and 23"),
        ({"filters": "{not json"}, "Filters", "JSON object"),
        ({"filters": '{"branch": "MUM"}'}, "Branch", "takes no filters"),
    ],
)
def test_the_screen_refuses_a_bad_schedule_naming_the_field(client, admin, changes, field, words):
    login(client, admin["Admin"].user.username)
    response = client.post("/reportscheduleview/add", data={**GOOD, **changes})
    body = response.get_data(as_text=True)
    assert response.status_code == 422, body[:500]
    assert field in body and words in body
    assert db.session.scalar(select(func.count(ReportSchedule.id))) == 0


def test_the_admin_schedules_a_report_and_others_may_not(client, admin):
    login(client, admin["Admin"].user.username)
    form = client.get("/reportscheduleview/add").get_data(as_text=True)
    assert "KYC report" in form and "Trial balance" in form
    manager = admin["Manager"]
    response = client.post(
        "/reportscheduleview/add", data={**GOOD, "recipients": [str(manager.user_id)]}
    )
    assert response.status_code == 302
    schedule = db.session.scalar(select(ReportSchedule))
    assert (schedule.report_key, schedule.recipient_roles, schedule.weekday) == (
        "kyc-report",
        "Manager,Compliance",
        0,
    )
    assert [u.id for u in schedule.recipients] == [manager.user_id]
    listing = client.get("/reportscheduleview/list/").get_data(as_text=True)
    assert "Weekly KYC to managers" in listing and "KYC report" in listing

    edited = client.post(
        f"/reportscheduleview/edit/{schedule.id}", data={**GOOD, "report_key": "nothing"}
    )
    assert edited.status_code == 422 and "is not a report" in edited.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ReportSchedule, schedule.id).report_key == "kyc-report"

    client.get("/logout/")
    login(client, manager.user.username)
    assert client.get("/reportscheduleview/list/").status_code == 403
    assert client.post("/reportscheduleview/add", data=GOOD).status_code == 403


def test_the_api_refuses_a_bad_schedule_by_field_and_creates_a_good_one(client, admin):
    from tests.support import api_token

    headers = {"Authorization": f"Bearer {api_token(client, admin['Admin'].user.username)}"}
    body = {
        "name": "Weekly KYC",
        "report_key": "kyc-report",
        "file_format": "xlsx",
        "frequency": "weekly",
        "weekday": 0,
        "hour": 7,
        "recipient_roles": "Manager",
        "recipients": [admin["Admin"].user_id],
        "filters": "{}",
        "active": True,
    }
    refused = client.post(
        "/api/v1/reportschedule/", json={**body, "report_key": "salaries"}, headers=headers
    )
    assert refused.status_code == 422 and "report_key" in refused.json["message"]
    refused = client.post(
        "/api/v1/reportschedule/", json={**body, "recipient_roles": "Wizard"}, headers=headers
    )
    assert refused.status_code == 422 and "recipient_roles" in refused.json["message"]
    assert db.session.scalar(select(func.count(ReportSchedule.id))) == 0
    created = client.post("/api/v1/reportschedule/", json=body, headers=headers)
    assert created.status_code == 201, created.json
    schedule = db.session.get(ReportSchedule, created.json["id"])
    assert [u.id for u in schedule.recipients] == [admin["Admin"].user_id]
    shown = client.get(f"/api/v1/reportschedule/{schedule.id}", headers=headers).json["result"]
    assert shown["recipient_ids"] == [admin["Admin"].user_id] and "recipients" not in shown
    manager = {"Authorization": f"Bearer {api_token(client, admin['Manager'].user.username)}"}
    assert client.get("/api/v1/reportschedule/", headers=manager).status_code == 403


def test_a_dashboard_chart_is_mailed_from_the_job_each_manager_their_branch(
    pg_app, branches, mailbox
):
    """The dashboards' reports link their bars to lists (``url_for``); the job, which runs
    outside any request, still builds them, each for its recipient."""
    from tests.support import make_lead

    for n in range(2):
        make_lead(branches["agent"], first_name=f"Mumbai{n}")
    sydney_agent = make_staff("Agent", branches["sydney_manager"].branch)
    make_lead(sydney_agent, first_name="Sydney", status="contacted")
    schedule = ReportSchedule(
        name="Daily funnel",
        report_key="lead-funnel",
        file_format="csv",
        frequency="daily",
        hour=6,
        recipient_roles="Manager",
        filters="{}",
        created_at=CREATED,
    )
    db.session.add(schedule)
    db.session.commit()
    run = send_due_reports(MONDAY_0705)
    assert (run.emails, run.problems) == (2, [])
    assert dispatch_outbox().sent == 2 and mailbox.wait_for(2)
    funnels = {}
    for message in mailbox.messages:
        attachment = next(message.iter_attachments())
        rows = list(
            csv.reader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig")))
        )
        funnels[message["To"]] = {status: count for status, count in rows[1:]}
    assert funnels[branches["mumbai_manager"].user.email]["New"] == "2"
    assert funnels[branches["mumbai_manager"].user.email]["Contacted"] == "0"
    assert funnels[branches["sydney_manager"].user.email]["Contacted"] == "1"
    assert funnels[branches["sydney_manager"].user.email]["New"] == "0"


@pytest.mark.parametrize(
    "recipients",
    [[{"username": "x"}], [999999], ["1"], [2**40], "Manager"],
)
def test_the_api_takes_recipients_as_known_user_ids_only(client, admin, recipients):
    from tests.support import api_token

    headers = {"Authorization": f"Bearer {api_token(client, admin['Admin'].user.username)}"}
    response = client.post(
        "/api/v1/reportschedule/",
        json={
            "name": "Weekly KYC",
            "report_key": "kyc-report",
            "file_format": "pdf",
            "frequency": "daily",
            "hour": 7,
            "recipient_roles": "",
            "recipients": recipients,
        },
        headers=headers,
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "recipients" in response.json["message"]
    assert db.session.scalar(select(func.count(ReportSchedule.id))) == 0
