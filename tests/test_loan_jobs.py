"""The lending desk's daily jobs (arrears, reminders), and loans on timelines and calendars.

Instalments are marked paid by setting their amounts and status directly: these tests are about
what the jobs do with a schedule, not about how repayments are allocated."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask import current_app
from sqlalchemy import select

from app.clients.models import Client
from app.clients.services import prepare_client
from app.clients.timeline import client_timeline
from app.comms.models import Notification
from app.extensions import db
from app.lending.jobs import bucket_for, send_loan_reminders, update_arrears
from app.lending.models import (
    LoanApplication,
    LoanArrearsChange,
    LoanInstalment,
    LoanNote,
    LoanParty,
    LoanRepayment,
    LoanStageEvent,
)
from app.tasks.calendar import events_for
from tests.lending_support import make_application, make_settled_loan
from tests.support import make_branch, make_staff

SETTLED_ON = date(2027, 1, 15)  # instalments due on the 15th: 15 Feb, 15 Mar, 15 Apr, 15 May...


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request):
    """The test runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def _desk():
    branch = make_branch()
    people = {
        "bdm": make_staff("LoanOfficer", branch),
        "other": make_staff("LoanOfficer", branch),
        "author": make_staff("LoanOfficer", branch),
    }
    db.session.commit()
    return people


@pytest.fixture
def desk(app):
    return _desk()


@pytest.fixture
def any_desk(any_app):
    return _desk()


def _instalments(loan: LoanApplication, up_to: int = 6) -> dict[int, LoanInstalment]:
    return {
        row.number: row
        for row in db.session.scalars(
            select(LoanInstalment).where(
                LoanInstalment.application_id == loan.id, LoanInstalment.number <= up_to
            )
        )
    }


def _pay(instalment: LoanInstalment, on: date) -> None:
    instalment.paid_principal, instalment.paid_interest = instalment.principal, instalment.interest
    instalment.status, instalment.paid_on = "paid", on


def _loan_outbox() -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification).where(Notification.kind.like("loan_%")).order_by(Notification.id)
        )
    )


def _history(loan: LoanApplication) -> list[tuple[date, str, str, int]]:
    return [
        (row.changed_on, row.from_bucket, row.to_bucket, row.days_past_due)
        for row in db.session.scalars(
            select(LoanArrearsChange)
            .where(LoanArrearsChange.application_id == loan.id)
            .order_by(LoanArrearsChange.id)
        )
    ]


# ---- arrears ----------------------------------------------------------------------------------


def test_buckets():
    assert [bucket_for(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 400)] == [
        "current",
        "1-30",
        "1-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "90+",
        "90+",
    ]


def test_arrears_buckets_history_and_reruns(any_desk):
    loan = make_settled_loan(any_desk["bdm"], SETTLED_ON)
    on_time = make_settled_loan(any_desk["bdm"], SETTLED_ON)
    db.session.commit()
    first_due = date(2027, 2, 15)
    seen = []
    for days_late in (0, 1, 2, 30, 31, 61, 91):
        day = first_due + timedelta(days=days_late)
        for instalment in _instalments(on_time, 4).values():
            if instalment.due_date <= day:
                _pay(instalment, instalment.due_date)
        db.session.commit()
        first = update_arrears(day)
        again = update_arrears(day)
        assert again == {"instalments_late": 0, "loans_updated": 0, "bucket_changes": 0}
        db.session.expire_all()
        seen.append((days_late, loan.days_past_due, loan.arrears_bucket, first["bucket_changes"]))
        assert (on_time.days_past_due, on_time.arrears_bucket) == (0, "current")
    assert seen == [
        (0, 0, "current", 0),  # due today: not late yet
        (1, 1, "1-30", 1),
        (2, 2, "1-30", 0),  # days move on, the bucket does not: no history row
        (30, 30, "1-30", 0),
        (31, 31, "31-60", 1),
        (61, 61, "61-90", 1),
        (91, 91, "90+", 1),
    ]
    day = first_due + timedelta(days=91)  # 17 May 2027: instalments 1-4 are past due
    assert _history(loan) == [
        (date(2027, 2, 16), "current", "1-30", 1),
        (date(2027, 3, 18), "1-30", "31-60", 31),
        (date(2027, 4, 17), "31-60", "61-90", 61),
        (date(2027, 5, 17), "61-90", "90+", 91),
    ]
    assert _history(on_time) == []
    statuses = {n: i.status for n, i in _instalments(loan).items()}
    assert statuses == {1: "late", 2: "late", 3: "late", 4: "late", 5: "scheduled", 6: "scheduled"}

    # A paid instalment no longer counts: the oldest unpaid one is now number 2 (15 Mar).
    instalments = _instalments(loan)
    _pay(instalments[1], day)
    db.session.commit()
    assert update_arrears(day)["bucket_changes"] == 1
    db.session.expire_all()
    assert (loan.days_past_due, loan.arrears_bucket) == (63, "61-90")
    # A partly paid instalment still counts.
    instalments = _instalments(loan)
    for number in (2, 3):
        _pay(instalments[number], day)
    instalments[4].paid_interest = instalments[4].interest
    instalments[4].status = "partial"
    db.session.commit()
    update_arrears(day)
    db.session.expire_all()
    assert (loan.days_past_due, loan.arrears_bucket) == (2, "1-30")
    _pay(instalments[4], day)
    db.session.commit()
    assert update_arrears(day) == {"instalments_late": 0, "loans_updated": 1, "bucket_changes": 1}
    db.session.expire_all()
    assert (loan.days_past_due, loan.arrears_bucket) == (0, "current")
    assert _history(loan)[-3:] == [
        (day, "90+", "61-90", 63),
        (day, "61-90", "1-30", 2),
        (day, "1-30", "current", 0),
    ]
    assert update_arrears(day) == {"instalments_late": 0, "loans_updated": 0, "bucket_changes": 0}


def test_a_partly_paid_instalment_becomes_late(desk):
    loan = make_settled_loan(desk["bdm"], SETTLED_ON)
    first = _instalments(loan)[1]
    first.paid_interest, first.status = first.interest, "partial"
    db.session.commit()
    update_arrears(date(2027, 2, 15))
    assert db.session.get(LoanInstalment, first.id).status == "partial"
    update_arrears(date(2027, 2, 16))
    assert db.session.get(LoanInstalment, first.id).status == "late"


# ---- reminders: four months of one loan, day by day ------------------------------------------


def test_four_months_of_a_loan_notify_each_event_once(any_desk):
    """Settled 15 Jan 2027; the jobs run every day for 120 days (to 14 May). Instalments 1 and 3
    are paid on their due dates, 2 (15 Mar) is never paid, 4 (15 May) is not due yet."""
    bdm = any_desk["bdm"]
    loan = make_settled_loan(bdm, SETTLED_ON, borrower_email="first@test.example")
    first = loan.parties[0]
    second = LoanParty(
        application_id=loan.id,
        role="borrower",
        party_type="individual",
        first_name="Sam",
        last_name="Second",
        email="second@test.example",
    )
    no_email = LoanParty(
        application_id=loan.id,
        role="borrower",
        party_type="individual",
        first_name="Nora",
        last_name="Noemail",
    )
    guarantor = LoanParty(
        application_id=loan.id,
        role="guarantor",
        party_type="individual",
        first_name="Gus",
        last_name="Guarantor",
        email="guarantor@test.example",
    )
    db.session.add_all([second, no_email, guarantor])
    db.session.commit()
    instalment_ids = {n: i.id for n, i in _instalments(loan, 5).items()}
    days = [SETTLED_ON + timedelta(days=n) for n in range(120)]
    assert days[-1] == date(2027, 5, 14)

    sent_on: dict[date, Counter] = {}
    for day in days:
        for number in (1, 3):
            instalment = db.session.get(LoanInstalment, instalment_ids[number])
            if instalment.due_date == day:
                _pay(instalment, day)
        db.session.commit()
        update_arrears(day)
        counts = Counter({k: v for k, v in send_loan_reminders(day).items() if v})
        if counts:
            sent_on[day] = counts

    # Each event on its day, one message per recipient (both borrowers and the BDM).
    assert sent_on == {
        date(2027, 2, 12): Counter(loan_due_soon=3),
        date(2027, 3, 12): Counter(loan_due_soon=3),
        date(2027, 3, 18): Counter(loan_late_borrower=2),  # 3 days late
        date(2027, 3, 22): Counter(loan_late_borrower=2),  # 7 days late
        date(2027, 3, 25): Counter(loan_late_bdm=1),  # 10 days late
        date(2027, 4, 12): Counter(loan_due_soon=3),
        date(2027, 5, 12): Counter(loan_due_soon=3),
    }

    rows = _loan_outbox()
    keys = [row.idempotency_key for row in rows]
    assert len(keys) == len(set(keys)) == 22
    borrowers = {first.id: "first@test.example", second.id: "second@test.example"}
    late = instalment_ids[2]
    u = bdm.user_id
    expected = {
        *(
            f"loan-due:{instalment_ids[n]}:party:{party}:email"
            for n in (1, 2, 3, 4)
            for party in borrowers
        ),
        *(
            f"loan-due:{instalment_ids[n]}:user:{u}:{channel}"
            for n in (1, 2, 3, 4)
            for channel in ("email", "in_app")
        ),
        *(
            f"loan-late:{late}:{stage}:party:{party}:email"
            for stage in (3, 7)
            for party in borrowers
        ),
        f"loan-late-bdm:{late}:10:user:{u}:email",
        f"loan-late-bdm:{late}:10:user:{u}:in_app",
    }
    assert set(keys) == expected

    # What notify wrote: borrowers by e-mail at their address; the BDM (default preferences) by
    # e-mail to their address and in the app. Nobody else: not the guarantor, not the borrower
    # without an address.
    per_kind = Counter(
        (row.kind, row.channel, row.recipient_user_id, row.address, row.status) for row in rows
    )
    bdm_email = bdm.user.email
    assert per_kind == Counter(
        {
            ("loan_due_soon", "email", None, "first@test.example", "pending"): 4,
            ("loan_due_soon", "email", None, "second@test.example", "pending"): 4,
            ("loan_due_soon", "email", u, bdm_email, "pending"): 4,
            ("loan_due_soon", "in_app", u, None, "sent"): 4,
            ("loan_late_borrower", "email", None, "first@test.example", "pending"): 2,
            ("loan_late_borrower", "email", None, "second@test.example", "pending"): 2,
            ("loan_late_bdm", "email", u, bdm_email, "pending"): 1,
            ("loan_late_bdm", "in_app", u, None, "sent"): 1,
        }
    )
    assert {row.related_id for row in rows} == {str(instalment_ids[n]) for n in (1, 2, 3, 4)}
    assert {row.link for row in rows if row.recipient_user_id} == {
        f"/loanapplicationview/show/{loan.id}"
    }
    assert {row.link for row in rows if row.address and not row.recipient_user_id} == {None}

    # Each message names the loan, the instalment, its due date and amount.
    amount = db.session.get(LoanInstalment, late).total
    money = f"{current_app.config['CRM_BASE_CURRENCY']} {amount:,.2f}"
    for row in rows:
        if row.related_id == str(late):
            assert loan.reference in row.subject
            assert "instalment 2 of loan " + loan.reference in row.body
            assert money in row.body and "15 Mar 2027" in row.body
    late_to_first = next(
        row
        for row in rows
        if row.idempotency_key.startswith(f"loan-late:{late}:7:party:{first.id}")
    )
    assert late_to_first.body.startswith(f"Dear {first.name},")
    assert "7 days overdue" in late_to_first.subject

    # Arrears followed the unpaid instalment: late since 16 Mar, 31-60 from 15 Apr (31 days).
    db.session.expire_all()
    assert (loan.days_past_due, loan.arrears_bucket) == (60, "31-60")
    assert _history(loan) == [
        (date(2027, 3, 16), "current", "1-30", 1),
        (date(2027, 4, 15), "1-30", "31-60", 31),
    ]
    statuses = {n: i.status for n, i in _instalments(loan, 5).items()}
    assert statuses == {1: "paid", 2: "late", 3: "paid", 4: "scheduled", 5: "scheduled"}

    # The whole window again: nothing new.
    for day in days:
        assert not any(send_loan_reminders(day).values()), day
    assert update_arrears(days[-1]) == {
        "instalments_late": 0,
        "loans_updated": 0,
        "bucket_changes": 0,
    }
    assert [row.idempotency_key for row in _loan_outbox()] == keys
    assert len(_history(loan)) == 2


def test_a_job_that_was_down_sends_only_the_latest_stage_within_the_catch_up(desk):
    bdm = desk["bdm"]
    loan = make_settled_loan(bdm, SETTLED_ON)
    db.session.commit()
    due = date(2027, 2, 15)
    # Down from day 1 to day 8 before the due date: the due-soon window (1-3 days) was missed.
    assert send_loan_reminders(due)["loan_due_soon"] == 0
    # Down on days 3 to 6 late: on day 7 the borrower hears once, the 7-day stage only.
    assert send_loan_reminders(due + timedelta(days=7))["loan_late_borrower"] == 1
    # Down from day 10 to day 13: day 13 is still within the catch-up (10 + 3) for the BDM.
    assert send_loan_reminders(due + timedelta(days=13))["loan_late_bdm"] == 1
    keys = {row.idempotency_key for row in _loan_outbox()}
    number_1 = _instalments(loan)[1].id
    assert {k for k in keys if k.startswith("loan-late")} == {
        f"loan-late:{number_1}:7:party:{loan.parties[0].id}:email",
        f"loan-late-bdm:{number_1}:10:user:{bdm.user_id}:email",
        f"loan-late-bdm:{number_1}:10:user:{bdm.user_id}:in_app",
    }
    # Instalment 2 (15 Mar), back 11 days late: the borrowers' 7-day stage is 4 days old and
    # skipped; the BDM's 10-day stage is a day old and sent.
    counts = send_loan_reminders(date(2027, 3, 26))
    assert (counts["loan_late_borrower"], counts["loan_late_bdm"]) == (0, 1)
    # Instalment 3 (15 Apr), back 14 days late: every stage is past its catch-up.
    assert not any(send_loan_reminders(date(2027, 4, 29)).values())


# ---- stale stages and note reminders ------------------------------------------------------


def test_a_stale_stage_notifies_the_bdm_once_per_stay(desk):
    bdm = desk["bdm"]
    entered = datetime(2027, 3, 1, 16, 30, tzinfo=UTC)
    application = make_application(bdm, stage="assessment", stage_changed_at=entered)
    make_settled_loan(bdm, date(2027, 1, 1))  # settled: never stale
    db.session.commit()

    def run(first: date, days: int) -> dict[date, int]:
        found = {}
        for n in range(days):
            day = first + timedelta(days=n)
            count = send_loan_reminders(day)["loan_stale_stage"]
            if count:
                found[day] = count
        return found

    assert run(date(2027, 3, 1), 40) == {date(2027, 3, 15): 1}
    rows = [row for row in _loan_outbox() if row.kind == "loan_stale_stage"]
    assert {(row.channel, row.recipient_user_id) for row in rows} == {
        ("email", bdm.user_id),
        ("in_app", bdm.user_id),
    }
    assert "has been in assessment for 14 days" in rows[0].subject
    assert application.reference in rows[0].subject

    # A new stay (approved, then back to assessment) can notify again, once.
    application = db.session.get(LoanApplication, application.id)
    application.stage, application.stage_changed_at = "approved", datetime(2027, 4, 20, tzinfo=UTC)
    db.session.commit()
    # The job was down on the 14th day (4 May) and came back 2 days later: still sent.
    assert run(date(2027, 5, 6), 10) == {date(2027, 5, 6): 1}
    application = db.session.get(LoanApplication, application.id)
    application.stage, application.stage_changed_at = "assessment", datetime(2027, 6, 1, tzinfo=UTC)
    db.session.commit()
    # Down from the 14th to the 17th day (15 to 18 June): 4 days late, skipped.
    assert run(date(2027, 6, 19), 30) == {}
    assert len([row for row in _loan_outbox() if row.kind == "loan_stale_stage"]) == 4


def test_a_note_reminds_its_author_and_the_bdm_once(desk):
    bdm, author = desk["bdm"], desk["author"]
    application = make_application(bdm)
    remind_on = date(2027, 3, 10)
    note = LoanNote(
        application_id=application.id,
        body="Call the valuer about the report\nThey promised it by Friday.",
        remind_on=remind_on,
        author_id=author.user_id,
    )
    own = LoanNote(
        application_id=application.id,
        body="Check the payslips",
        remind_on=remind_on,
        author_id=bdm.user_id,
    )
    too_old = LoanNote(
        application_id=application.id,
        body="Long forgotten",
        remind_on=remind_on - timedelta(days=5),  # the job did not run from then to the 9th
        author_id=author.user_id,
    )
    db.session.add_all([note, own, too_old])
    db.session.commit()

    assert send_loan_reminders(remind_on - timedelta(days=1))["loan_note_reminder"] == 0
    assert send_loan_reminders(remind_on)["loan_note_reminder"] == 3  # author + BDM, BDM once
    assert send_loan_reminders(remind_on)["loan_note_reminder"] == 0
    assert send_loan_reminders(remind_on + timedelta(days=1))["loan_note_reminder"] == 0
    db.session.expire_all()
    assert note.reminded_at is not None and own.reminded_at is not None
    assert too_old.reminded_at is None  # past the catch-up: never sent
    rows = [row for row in _loan_outbox() if row.kind == "loan_note_reminder"]
    assert Counter((row.related_id, row.recipient_user_id) for row in rows) == {
        (str(note.id), author.user_id): 2,
        (str(note.id), bdm.user_id): 2,
        (str(own.id), bdm.user_id): 2,
    }
    subject = next(row.subject for row in rows if row.related_id == str(note.id))
    assert subject == f"Reminder on {application.reference}: Call the valuer about the report"


# ---- timeline and calendar ----------------------------------------------------------------


def test_a_client_timeline_shows_stage_changes_and_repayments(desk):
    bdm = desk["bdm"]
    client = prepare_client(
        Client(
            name="Asha Verma",
            email="asha@example.in",
            branch_id=bdm.branch_id,
            relationship_manager_id=bdm.user_id,
        )
    )
    db.session.add(client)
    db.session.flush()
    loan = make_settled_loan(bdm, SETTLED_ON, client_id=client.id)
    elsewhere = make_settled_loan(bdm, SETTLED_ON)  # no client: on nobody's timeline
    for application in (loan, elsewhere):
        db.session.add(
            LoanStageEvent(
                application_id=application.id,
                occurred_at=datetime(2027, 1, 15, 10, 0, tzinfo=UTC),
                actor_name="Lee Officer",
                from_stage="approved",
                to_stage="settled",
            )
        )
        db.session.add(
            LoanRepayment(
                application_id=application.id,
                amount=Decimal("2838.95"),
                received_on=date(2027, 2, 15),
                interest_part=Decimal("2291.67"),
                principal_part=Decimal("547.28"),
                recorded_by_id=bdm.user_id,
                created_at=datetime(2027, 2, 15, 11, 0, tzinfo=UTC),
            )
        )
    db.session.commit()

    _, events = client_timeline(client.id, kinds={"loan", "repayment"})
    assert [(e.kind, e.title, e.who, e.url) for e in events] == [
        (
            "repayment",
            f"Repayment of INR 2,838.95 on {loan.reference}",
            bdm.user.username,
            f"/loanapplicationview/show/{loan.id}",
        ),
        (
            "loan",
            f"{loan.reference}: approved → settled",
            "Lee Officer",
            f"/loanapplicationview/show/{loan.id}",
        ),
    ]
    assert events[0].detail.startswith("received 15 Feb 2027 by bank transfer")
    # Paging: older than the repayment leaves the stage change only.
    _, older = client_timeline(client.id, kinds={"loan", "repayment"}, before=events[0].at)
    assert [e.kind for e in older] == ["loan"]


def test_the_calendar_shows_due_instalments_to_the_bdm_and_reminders_to_the_author(desk):
    bdm, other, author = desk["bdm"], desk["other"], desk["author"]
    loan = make_settled_loan(bdm, SETTLED_ON)
    db.session.add(
        LoanNote(
            application_id=loan.id,
            body="Ask about the bonus",
            remind_on=date(2027, 2, 20),
            author_id=author.user_id,
        )
    )
    db.session.commit()
    start = datetime(2027, 2, 1, tzinfo=UTC)
    end = datetime(2027, 3, 1, tzinfo=UTC)

    mine = [e for e in events_for(bdm.user_id, start, end) if e.kind == "instalment"]
    assert [(e.title, e.start, e.url) for e in mine] == [
        (
            f"{loan.reference} instalment 1 due: INR 2,838.95",
            datetime(2027, 2, 15, 9, 0, tzinfo=UTC),
            f"/loanapplicationview/show/{loan.id}",
        )
    ]
    assert events_for(other.user_id, start, end) == []
    assert [(e.kind, e.title) for e in events_for(author.user_id, start, end)] == [
        ("loan_note", f"Reminder on {loan.reference}: Ask about the bonus")
    ]
    # The range is [start, end): an instalment due on the end day is not in it.
    march = [e for e in events_for(bdm.user_id, end, datetime(2027, 3, 15, tzinfo=UTC))]
    assert march == []


def test_the_jobs_cost_a_fixed_number_of_queries_whatever_the_book(desk):
    """Candidates are found with one query per rule and arrears with set-based statements; a run
    that finds nothing new issues no query per loan or instalment."""
    from sqlalchemy import event

    def statements(run) -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            run()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))])

    day = date(2027, 3, 13)  # instalment 2 due in 2 days; instalment 1 is 26 days late
    costs = []
    for _ in range(2):
        for _ in range(5):
            make_settled_loan(desk["bdm"], SETTLED_ON)
        db.session.commit()
        update_arrears(day)
        send_loan_reminders(day)
        costs.append(
            (statements(lambda: update_arrears(day)), statements(lambda: send_loan_reminders(day)))
        )
    # Arrears: one statement per rule (mark late, record bucket changes, write the loans that
    # changed), and before each of the two updates one read of the rows it matches, for the
    # dashboard summaries (none here, so nothing more). Reminders: one query per rule (five)
    # and one for the events already in the outbox.
    assert costs == [(5, 6), (5, 6)]
