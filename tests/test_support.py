"""Support cases: the SLA by priority, the workflow and its refusals, replies through the
outbox, inbound e-mail threading, chat transcripts, breach reminders sent once, row scoping,
the queue screen and the dashboard's links."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.clients.models import Client
from app.comms.models import MessageLog, Notification
from app.core.types import utcnow
from app.extensions import db
from app.org.models import StaffProfile
from app.support import services
from app.support.inbound import ingest_email
from app.support.jobs import send_breach_reminders
from app.support.models import SupportCase, SupportMessage, SupportTranscript
from tests.support import api_token, login, make_branch, make_staff

INBOX = "support@fincrm.example"


def make_client(branch, name="Asha Verma", email="asha@example.in", agent=None) -> Client:
    client = Client(
        name=name,
        email=email,
        branch_id=branch.id,
        relationship_manager_id=agent.user_id if agent else None,
    )
    db.session.add(client)
    db.session.flush()
    return client


@pytest.fixture
def desk(request):
    """Two branches, each with a support person and a client; a manager and an auditor."""
    mumbai = make_branch(tz="Asia/Kolkata")
    sydney = make_branch(tz="Australia/Sydney")
    people = {
        "support": make_staff("Support", mumbai),
        "colleague": make_staff("Support", mumbai),
        "manager": make_staff("Manager", mumbai),
        "auditor": make_staff("Auditor", mumbai),
        "support_syd": make_staff("Support", sydney),
    }
    people["asha"] = make_client(mumbai)
    people["ben"] = make_client(sydney, "Ben Lee", "ben@example.au")
    people["mumbai"], people["sydney"] = mumbai, sydney
    db.session.commit()
    return people


def bearer(client, staff) -> dict:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


def raw_email(
    sender: str,
    subject: str,
    body: str = "Hello",
    *,
    to: str = INBOX,
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Someone <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes()


def counts() -> tuple[int, int, int, int]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (SupportCase, SupportMessage, MessageLog, SupportTranscript)
    )


def rejections(fragment: str) -> int:
    return db.session.scalar(
        select(func.count(AuditLog.id)).where(
            AuditLog.action == "rejected", AuditLog.detail.contains(fragment)
        )
    )


# ---- SLA ----------------------------------------------------------------------------------


def test_the_sla_due_time_follows_the_priority_and_its_setting(app, desk, monkeypatch):
    due = {}
    for priority in ("urgent", "high", "normal", "low"):
        case = services.open_case(desk["asha"].id, f"A {priority} case", priority=priority)
        due[priority] = round((case.sla_due_at - case.opened_at).total_seconds() / 3600)
    assert due == {"urgent": 4, "high": 8, "normal": 24, "low": 72}

    monkeypatch.setitem(app.config, "CRM_SUPPORT_SLA_HOURS", {"urgent": 1})
    urgent = services.open_case(desk["asha"].id, "Card blocked abroad", priority="urgent")
    assert urgent.sla_due_at - urgent.opened_at == timedelta(hours=1)
    # a priority change moves the due time from the same start
    urgent.priority = "normal"
    services.prepare_case(urgent)
    assert urgent.sla_due_at - urgent.sla_started_at == timedelta(hours=24)


# ---- workflow over the API ----------------------------------------------------------------


def test_the_workflow_allows_its_moves_and_refuses_the_others_with_a_reason(client, desk):
    headers = bearer(client, desk["support"])
    created = client.post(
        "/api/v1/supportcase/",
        json={"client_id": desk["asha"].id, "subject": "Statement missing", "priority": "high"},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    pk = created.json["id"]

    def move(status):
        return client.post(
            f"/api/v1/supportcase/{pk}/transition", json={"status": status}, headers=headers
        )

    refused = move("closed")
    assert refused.status_code == 409
    assert "is new and cannot move to closed" in refused.json["message"]["status"][0]
    assert "it can go to: open" in refused.json["message"]["status"][0]
    assert db.session.get(SupportCase, pk).status == "new"
    assert rejections(f"case #{pk} is new and cannot move to closed") == 1

    for status in ("open", "waiting", "resolved"):
        answer = move(status)
        assert answer.status_code == 200, answer.json
        assert answer.json["result"]["status"] == status
    resolved = db.session.get(SupportCase, pk)
    db.session.refresh(resolved)
    assert resolved.resolved_at is not None
    first_due = resolved.sla_due_at

    reopened = move("open")  # the client says it is not solved
    assert reopened.status_code == 200
    db.session.expire_all()
    case = db.session.get(SupportCase, pk)
    assert case.resolved_at is None and case.sla_due_at > first_due

    assert move("resolved").status_code == 200
    assert move("closed").status_code == 200
    db.session.expire_all()
    assert db.session.get(SupportCase, pk).closed_at is not None
    final = move("open")
    assert final.status_code == 409
    assert "nowhere (it is final)" in final.json["message"]["status"][0]
    assert move("flying").status_code == 422

    changes = db.session.scalars(
        select(AuditLog).where(
            AuditLog.record_type == "support_case",
            AuditLog.record_id == str(pk),
            AuditLog.action == "update",
        )
    ).all()
    assert len(changes) >= 6  # every accepted move left an audit row


def test_bad_input_to_the_api_is_refused_with_the_field_and_writes_nothing(client, desk):
    headers = bearer(client, desk["support"])
    before = counts()
    cases = [
        ({"client_id": desk["asha"].id, "subject": ""}, "subject"),
        ({"client_id": desk["asha"].id, "subject": "x", "priority": "asap"}, "priority"),
        ({"client_id": desk["asha"].id, "subject": "x", "channel": "fax"}, "channel"),
        ({"client_id": desk["ben"].id, "subject": "Another branch's client"}, "client"),
        ({"subject": "No client"}, "client"),
    ]
    for body, field in cases:
        answer = client.post("/api/v1/supportcase/", json=body, headers=headers)
        assert answer.status_code in (400, 422), (body, answer.json)
        assert field in json.dumps(answer.json), (body, answer.json)
    assert counts() == before

    case = services.open_case(desk["asha"].id, "Card declined")
    db.session.commit()
    for url, body, field in (
        (f"/api/v1/supportcase/{case.id}/reply", {"body": "   "}, "body"),
        (f"/api/v1/supportcase/{case.id}/assign", {"assignee_id": "abc"}, "assignee"),
        (
            f"/api/v1/supportcase/{case.id}/assign",
            {"assignee_id": desk["support_syd"].user_id},
            "assignee",
        ),
        (
            f"/api/v1/supportcase/{case.id}/assign",
            {"assignee_id": desk["auditor"].user_id},
            "assignee",
        ),
    ):
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == 422, (url, body, answer.json)
        assert field in answer.json["message"], answer.json
    bad_filter = client.get("/api/v1/supportcase/queue?priority=asap", headers=headers)
    assert bad_filter.status_code == 422 and "priority" in bad_filter.json["message"]
    db.session.expire_all()
    assert db.session.get(SupportCase, case.id).assignee_id is None
    assert db.session.scalar(select(func.count(Notification.id))) == 0


def test_another_branch_cannot_see_or_work_the_case_and_the_auditor_only_reads(client, desk):
    case = services.open_case(desk["asha"].id, "Address change")
    db.session.commit()
    sydney = bearer(client, desk["support_syd"])
    assert client.get(f"/api/v1/supportcase/{case.id}", headers=sydney).status_code == 404
    listed = client.get("/api/v1/supportcase/queue", headers=sydney)
    assert listed.status_code == 200 and listed.json["count"] == 0
    moved = client.post(
        f"/api/v1/supportcase/{case.id}/transition", json={"status": "open"}, headers=sydney
    )
    assert moved.status_code == 404
    assert client.get(f"/api/v1/supportcase/{case.id}/messages", headers=sydney).status_code == 404

    mumbai = bearer(client, desk["support"])
    assert client.get(f"/api/v1/supportcase/{case.id}", headers=mumbai).status_code == 200
    assert client.get("/api/v1/supportcase/queue", headers=mumbai).json["count"] == 1

    auditor = bearer(client, desk["auditor"])
    assert client.get(f"/api/v1/supportcase/{case.id}", headers=auditor).status_code == 200
    refused = client.post(
        f"/api/v1/supportcase/{case.id}/transition", json={"status": "open"}, headers=auditor
    )
    assert refused.status_code == 403
    db.session.expire_all()
    assert db.session.get(SupportCase, case.id).status == "new"


# ---- chat transcripts ---------------------------------------------------------------------


def test_a_chat_transcript_is_checked_whole_before_anything_is_attached(client, desk, app):
    case = services.open_case(desk["asha"].id, "Chat about a fee")
    db.session.commit()
    url = f"/api/v1/supportcase/{case.id}/transcript"
    headers = bearer(client, desk["support"])
    good = {
        "messages": [
            {"at": "2026-12-01T09:15:00+05:30", "from": "client", "text": "Why this fee?"},
            {
                "at": "2026-12-01T09:17:00+05:30",
                "from": "staff",
                "name": "Ravi",
                "text": "Let me see",
            },
        ]
    }
    before = counts()
    refusals = [
        (b"not json at all", "application/json", "not valid JSON"),
        (json.dumps(good).encode(), "text/plain", "must be JSON"),
        (b'{"messages": []}', "application/json", "non-empty list"),
        (
            json.dumps(
                {"messages": [{"at": "2026-12-01 09:15", "from": "client", "text": "x"}]}
            ).encode(),
            "application/json",
            "with its offset",
        ),
        (
            json.dumps(
                {"messages": [{"at": "2026-12-01T09:15:00+00:00", "from": "bot", "text": "x"}]}
            ).encode(),
            "application/json",
            "client or staff",
        ),
    ]
    for data, content_type, reason in refusals:
        answer = client.post(url, data=data, content_type=content_type, headers=headers)
        assert answer.status_code == 422, (data, answer.json)
        assert reason in answer.json["message"]["transcript"][0], answer.json
    app.config["CRM_SUPPORT_MAX_TRANSCRIPT_BYTES"] = 50
    try:
        too_big = client.post(url, json=good, headers=headers)
    finally:
        app.config["CRM_SUPPORT_MAX_TRANSCRIPT_BYTES"] = 500_000
    assert too_big.status_code == 422 and "too large" in too_big.json["message"]["transcript"][0]
    assert counts() == before

    attached = client.post(url, json=good, headers=headers)
    assert attached.status_code == 201, attached.json
    assert attached.json["result"]["messages"] == 2
    db.session.expire_all()
    chat = db.session.scalars(
        select(SupportMessage).where(SupportMessage.case_id == case.id).order_by(SupportMessage.id)
    ).all()
    assert [(m.channel, m.direction, m.body) for m in chat] == [
        ("chat", "inbound", "Why this fee?"),
        ("chat", "outbound", "Let me see"),
    ]
    assert db.session.get(SupportCase, case.id).first_response_at == chat[1].occurred_at
    again = client.post(url, json=good, headers=headers)
    assert again.status_code == 409 and "already attached" in json.dumps(again.json)


# ---- inbound e-mail -----------------------------------------------------------------------


def test_an_email_from_an_unknown_sender_is_refused_and_nothing_is_written(app, desk):
    before = counts()
    runner = app.test_cli_runner()
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".eml", delete=False) as handle:
        handle.write(raw_email("stranger@nowhere.example", "Help me", message_id="<s1@x>"))
    result = runner.invoke(args=["crm", "support-ingest", handle.name])
    assert result.exit_code != 0
    assert "no client has the address stranger@nowhere.example" in result.output
    db.session.expire_all()
    assert counts() == before
    assert rejections("no client has the address stranger@nowhere.example") == 1

    with pytest.raises(Exception, match="not addressed to the support address"):
        ingest_email(raw_email("asha@example.in", "Hi", to="someone@else.example"))
    db.session.rollback()
    assert counts() == before


def test_an_email_opens_a_case_and_the_clients_replies_join_it(app, desk):
    opened = ingest_email(raw_email("ASHA@example.in", "My card is blocked", message_id="<a1@m>"))
    db.session.commit()
    assert opened.created and opened.how == "new"
    case = opened.case
    assert (case.client_id, case.channel, case.status, case.subject) == (
        desk["asha"].id,
        "email",
        "new",
        "My card is blocked",
    )
    logged = db.session.scalar(
        select(MessageLog).where(
            MessageLog.related_type == "support_case", MessageLog.related_id == str(case.id)
        )
    )
    assert logged.direction == "inbound" and logged.sender == "asha@example.in"

    # the same e-mail again (a retried delivery) is refused: filed once
    with pytest.raises(Exception, match="already filed in case"):
        ingest_email(raw_email("asha@example.in", "My card is blocked", message_id="<a1@m>"))
    db.session.rollback()

    # quoting the case number in the subject joins it (and reopens a resolved case)
    services.transition_case(case.id, "open")
    services.transition_case(case.id, "resolved")
    db.session.commit()
    joined = ingest_email(
        raw_email("asha@example.in", f"Re: [Case #{case.id}] My card", message_id="<a2@m>")
    )
    db.session.commit()
    assert not joined.created and joined.how == "subject" and joined.case.id == case.id
    assert joined.case.status == "open"

    # someone else quoting the number does not write into Asha's case
    intruder = ingest_email(
        raw_email("ben@example.au", f"[Case #{case.id}] give me her data", message_id="<b1@m>")
    )
    db.session.commit()
    assert intruder.created and intruder.case.client_id == desk["ben"].id


# ---- the queue screen and the dashboard ---------------------------------------------------


def test_the_queue_filters_breached_cases_shows_branch_time_and_takes_a_case(client, desk):
    late = services.open_case(desk["asha"].id, "Refund overdue", priority="urgent")
    late.sla_due_at = utcnow() - timedelta(hours=2, minutes=5)
    services.open_case(desk["asha"].id, "Question about rates", priority="low")
    db.session.commit()
    login(client, desk["support"].user.username)
    page = client.get("/supportqueue/?breached=yes").get_data(as_text=True)
    assert "Refund overdue" in page and "Question about rates" not in page
    assert "overdue by 2 h" in page
    assert "IST" in page  # the Mumbai branch's clock
    page = client.get("/supportqueue/?breached=no").get_data(as_text=True)
    assert "Question about rates" in page and "Refund overdue" not in page
    bad = client.get("/supportqueue/?sort=sideways", follow_redirects=True)
    assert "Queue filter not understood" in bad.get_data(as_text=True)

    taken = client.post(f"/supportqueue/take/{late.id}", follow_redirects=True)
    assert f"Case #{late.id} is yours." in taken.get_data(as_text=True)
    db.session.expire_all()
    case = db.session.get(SupportCase, late.id)
    assert case.assignee_id == desk["support"].user_id and case.status == "open"
    refused = client.post(
        f"/supportqueue/move/{late.id}", data={"status": "closed"}, follow_redirects=True
    )
    assert "cannot move to closed" in refused.get_data(as_text=True)
    mine = client.get(f"/supportqueue/?assignee={desk['support'].user_id}").get_data(as_text=True)
    assert "Refund overdue" in mine and "Question about rates" not in mine


def test_the_dashboard_counts_breached_and_age_and_each_number_opens_its_rows(client, desk):
    from app.dashboards.support import cases_by_age, cases_by_sla

    old = services.open_case(desk["asha"].id, "Old and late")
    old.opened_at = utcnow() - timedelta(days=5)
    old.sla_due_at = utcnow() - timedelta(days=4)
    services.open_case(desk["asha"].id, "Fresh one")
    done = services.open_case(desk["asha"].id, "Already resolved")
    services.transition_case(done.id, "open")
    services.transition_case(done.id, "resolved")
    services.open_case(desk["ben"].id, "Sydney's case")  # another branch
    db.session.commit()
    login(client, desk["support"].user.username)
    assert "Support dashboard" in client.get("/dashboards/support/").get_data(as_text=True)

    from flask_login import login_user

    from app.security.scoping import acting_as, actor_for_user

    with client.application.test_request_context():
        login_user(desk["support"].user)
        with acting_as(actor_for_user(desk["support"].user_id)):
            sla = {bar.label: bar for bar in cases_by_sla(None).bars}
            age = {bar.label: bar for bar in cases_by_age(None).bars}
    assert (sla["Breached"].count, sla["Within SLA"].count) == (1, 1)
    assert (age["Under 1 day"].count, age["3-7 days"].count, age["1-3 days"].count) == (1, 1, 0)
    for bar, shown, hidden in (
        (sla["Breached"], "Old and late", "Fresh one"),
        (sla["Within SLA"], "Fresh one", "Old and late"),
        (age["3-7 days"], "Old and late", "Fresh one"),
    ):
        listing = client.get(bar.url).get_data(as_text=True)
        assert shown in listing and hidden not in listing, bar.url
        assert "Already resolved" not in listing and "Sydney" not in listing


# ---- PostgreSQL: the main flow through real SMTP ------------------------------------------


def test_main_flow_on_postgres_reply_threading_and_breach_reminders_once(
    pg_app, pg_client, mailbox
):
    from app.comms.services import dispatch_outbox

    mumbai = make_branch(tz="Asia/Kolkata")
    manager = make_staff("Manager", mumbai)
    support = make_staff("Support", mumbai)
    db.session.get(StaffProfile, support.id).manager_id = manager.user_id
    asha = make_client(mumbai)
    db.session.commit()
    headers = bearer(pg_client, support)

    filed = pg_client.post(
        "/api/v1/supportcase/ingest",
        data=raw_email("asha@example.in", "Loan statement wrong", message_id="<in1@mail>"),
        content_type="message/rfc822",
        headers=headers,
    )
    assert filed.status_code == 403  # filing raw mail is the gateway's (ingest) permission
    done = ingest_email(raw_email("asha@example.in", "Loan statement wrong", message_id="<in1@m>"))
    db.session.commit()
    case_id = done.case.id
    assert done.case.client_id == asha.id

    assert pg_client.post(f"/api/v1/supportcase/{case_id}/take", headers=headers).status_code == 200
    reply = pg_client.post(
        f"/api/v1/supportcase/{case_id}/reply",
        json={"body": "We are correcting it today.", "then_status": "waiting"},
        headers=headers,
    )
    assert reply.status_code == 201, reply.json
    dispatch_outbox()
    assert mailbox.wait_for(1)
    (sent,) = mailbox.to("asha@example.in")
    assert sent["Subject"] == f"[Case #{case_id}] Loan statement wrong"
    case = db.session.get(SupportCase, case_id)
    db.session.refresh(case)
    assert case.status == "waiting" and case.first_response_at is not None

    # Asha answers the e-mail (her mail program quotes our Message-ID), subject rewritten
    answer = ingest_email(
        raw_email(
            "asha@example.in",
            "Re: statement",
            "Thanks, still wrong though",
            message_id="<in2@m>",
            in_reply_to=sent["Message-ID"],
        )
    )
    db.session.commit()
    assert answer.how == "in-reply-to" and answer.case.id == case_id and not answer.created
    db.session.refresh(case)
    assert case.status == "open"
    bodies = [m.body for m in services.conversation(case_id)]
    assert bodies == ["Hello", "We are correcting it today.", "Thanks, still wrong though"]

    # past due: the assignee and their manager are told once, however often the sweep runs
    case.sla_due_at = utcnow() - timedelta(minutes=30)
    db.session.commit()
    assert send_breach_reminders() == 1
    assert send_breach_reminders() == 0
    dispatch_outbox()
    dispatch_outbox()
    assert mailbox.wait_for(3)
    breach_mail = [m for m in mailbox.messages if m["Subject"].startswith("SLA breached")]
    assert sorted(m["To"] for m in breach_mail) == sorted([support.user.email, manager.user.email])
    assert re.search(r"IST", breach_mail[0].get_body(("plain",)).get_content())
    assert (
        db.session.scalar(
            select(func.count(Notification.id)).where(Notification.kind == "support_breach")
        )
        == 4  # e-mail and in-app, for each of the two
    )
    # reopening after resolution gives a new due time: a new breach can be reported
    services.transition_case(case_id, "resolved")
    services.transition_case(case_id, "open")
    db.session.commit()
    assert send_breach_reminders(utcnow() + timedelta(days=2)) == 1
