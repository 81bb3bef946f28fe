"""Times in the reader's branch's time zone: the same stored instant reads in AEDT for a Sydney
agent and in IST for a Mumbai reader on the list, the detail page, the client timeline, the
calendar and a PDF export; a time typed on a form in Sydney is stored as the right UTC instant
and shown back in Sydney time; an e-mail to a Sydney agent tells Sydney time; summer time starts
and ends where the clocks do."""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.core.errors import FieldError
from app.core.localtime import format_local, to_utc, zone_named
from app.extensions import db
from app.leads.conversion import convert_lead
from app.security.scoping import Actor
from app.tasks.models import Task
from app.tasks.services import create_task
from tests.support import login, make_branch, make_lead, make_staff

SYDNEY = zone_named("Australia/Sydney")
MUMBAI = zone_named("Asia/Kolkata")
FOLLOW_UP = datetime(2026, 12, 6, 3, 5, tzinfo=UTC)
"""14:05 in Sydney (AEDT, UTC+11), 08:35 in Mumbai (IST, UTC+5:30)."""
SYDNEY_TEXT = "06 Dec 2026 14:05 AEDT"
MUMBAI_TEXT = "06 Dec 2026 08:35 IST"
UTC_TEXT = "06 Dec 2026 03:05"


def _actor(staff) -> Actor:
    return Actor(staff.user_id, frozenset({"Agent"}), staff.branch_id, staff.user.username)


@pytest.fixture
def world(app):
    sydney = make_branch("SYD", tz="Australia/Sydney")
    mumbai = make_branch("MUM", tz="Asia/Kolkata")
    agent = make_staff("Agent", sydney, "sydagent")
    auditor = make_staff("Auditor", mumbai, "mumauditor")
    lead = make_lead(agent, first_name="Zoe", last_name="Harbour", next_follow_up_at=FOLLOW_UP)
    db.session.commit()
    return agent, auditor, lead


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


# ---- the format and the clocks ---------------------------------------------------------------


def test_summer_time_starts_and_ends_where_the_clocks_do():
    # Sydney moves to AEDT at 02:00 AEST on 4 October 2026 (16:00 UTC on the 3rd) and back to
    # AEST at 03:00 AEDT on 5 April 2026 (16:00 UTC on the 4th).
    assert format_local(datetime(2026, 10, 3, 15, 59, tzinfo=UTC), SYDNEY) == (
        "04 Oct 2026 01:59 AEST"
    )
    assert format_local(datetime(2026, 10, 3, 16, 0, tzinfo=UTC), SYDNEY) == (
        "04 Oct 2026 03:00 AEDT"
    )
    assert format_local(datetime(2026, 4, 4, 15, 59, tzinfo=UTC), SYDNEY) == (
        "05 Apr 2026 02:59 AEDT"
    )
    assert format_local(datetime(2026, 4, 4, 16, 0, tzinfo=UTC), SYDNEY) == (
        "05 Apr 2026 02:00 AEST"
    )
    # India keeps one offset all year.
    assert format_local(datetime(2026, 6, 1, 0, 0, tzinfo=UTC), MUMBAI) == "01 Jun 2026 05:30 IST"

    # Typed times: 09:30 in Sydney is 22:30 UTC the day before in summer, 23:30 in winter.
    assert to_utc(datetime(2026, 12, 7, 9, 30), SYDNEY) == datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    assert to_utc(datetime(2026, 7, 7, 9, 30), SYDNEY) == datetime(2026, 7, 6, 23, 30, tzinfo=UTC)
    # 02:30 on 4 October does not happen in Sydney: refused, naming the field.
    with pytest.raises(FieldError) as refused:
        to_utc(datetime(2026, 10, 4, 2, 30), SYDNEY, "due_at")
    assert refused.value.field == "due_at" and "does not exist" in refused.value.message
    # 02:30 on 5 April happens twice: the first (still AEDT, UTC+11).
    assert to_utc(datetime(2026, 4, 5, 2, 30), SYDNEY) == datetime(2026, 4, 4, 15, 30, tzinfo=UTC)


def test_an_unknown_or_missing_zone_reads_as_utc():
    assert zone_named("Mars/Olympus") is zone_named("UTC") is zone_named(None)
    assert format_local(FOLLOW_UP, zone_named("Mars/Olympus")) == UTC_TEXT + " UTC"


# ---- screens -----------------------------------------------------------------------------------


def test_the_same_lead_reads_in_sydney_time_and_in_mumbai_time_on_list_and_page(client, world):
    agent, auditor, lead = world
    login(client, agent.user.username)
    listed = _page(client, "/leadview/list/")
    assert SYDNEY_TEXT in listed
    assert "Next follow-up (UTC)" not in listed and "Next follow-up" in listed
    shown = _page(client, f"/leadview/show/{lead.id}")
    assert SYDNEY_TEXT in shown and MUMBAI_TEXT not in shown
    # created_at and updated_at on the page are in Sydney time too
    assert len(re.findall(r"\d\d \w{3} \d{4} \d\d:\d\d AE[DS]T", shown)) >= 3

    # the edit form shows the stored time back in Sydney time, and reads it so
    assert 'value="2026-12-06T14:05"' in _page(client, f"/leadview/edit/{lead.id}")

    client.get("/logout/")
    login(client, auditor.user.username)
    assert MUMBAI_TEXT in _page(client, "/leadview/list/")
    shown = _page(client, f"/leadview/show/{lead.id}")
    assert MUMBAI_TEXT in shown and SYDNEY_TEXT not in shown


def test_a_search_on_a_time_reads_it_in_the_users_zone(client, world):
    """ "Due greater than 06 Dec 14:00" typed in Sydney means after 03:00 UTC: the task due at
    03:05 UTC (14:05 AEDT) is found, the one at 02:55 UTC (13:55 AEDT) is not (read as UTC,
    both would be left out)."""
    agent, _, _ = world
    for title, due in (("Late one", FOLLOW_UP), ("Early one", FOLLOW_UP - timedelta(minutes=10))):
        create_task(_actor(agent), title=title, assignee_id=agent.user_id, due_at=due)
    db.session.commit()
    login(client, agent.user.username)
    view = next(v for v in client.application.appbuilder.baseviews if v.endpoint == "TaskView")
    names = [type(f).__name__ for f in view._filters.get_search_filters()["due_at"]]
    index = names.index("FilterGreater")
    page = _page(client, f"/taskview/list/?_flt_{index}_due_at=2026-12-06+14:00:00")
    assert "Late one" in page and "Early one" not in page


def test_a_pdf_export_is_in_the_exporting_users_zone_and_a_csv_says_utc(client, world):
    agent, auditor, _ = world
    for user, expected, other in ((agent, SYDNEY_TEXT, MUMBAI_TEXT), (auditor, MUMBAI_TEXT, "")):
        login(client, user.user.username)
        links = dict(
            re.findall(r'id="export-(csv|pdf)" href="([^"]+)"', _page(client, "/leadview/list/"))
        )
        response = client.get(html.unescape(links["pdf"]))
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        text = " ".join(
            page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages
        )
        assert expected in text
        assert other == "" or other not in text
        # "Generated:" is in the same zone
        abbreviation = expected.rsplit(" ", 1)[1]
        assert re.search(rf"Generated: \d\d \w{{3}} \d{{4}} \d\d:\d\d {abbreviation}", text)

        csv_text = client.get(html.unescape(links["csv"])).get_data().decode("utf-8-sig")
        heading, first = csv_text.splitlines()[:2]
        assert "Next follow-up (UTC)" in heading
        assert "2026-12-06 03:05:00" in first
        client.get("/logout/")


def test_a_due_time_typed_in_sydney_is_stored_as_utc_and_shown_back_in_sydney_time(client, world):
    agent, _, _ = world
    login(client, agent.user.username)
    form = _page(client, "/taskview/add")
    assert "Australia/Sydney" in form
    response = client.post(
        "/taskview/add",
        data={
            "title": "Call Zoe",
            "due_at": "2026-12-07 09:30:00",
            "priority": "normal",
            "status": "open",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    task = db.session.scalars(select(Task)).one()
    assert task.due_at == datetime(2026, 12, 6, 22, 30, tzinfo=UTC)

    edit = _page(client, f"/taskview/edit/{task.id}")
    assert 'type="datetime-local"' in edit and 'value="2026-12-07T09:30"' in edit
    assert "07 Dec 2026 09:30 AEDT" in _page(client, f"/taskview/show/{task.id}")

    # A time the clocks skip is refused beside the field; nothing is saved.
    response = client.post(
        "/taskview/add",
        data={
            "title": "Impossible",
            "due_at": "2026-10-04 02:30:00",
            "priority": "normal",
            "status": "open",
        },
    )
    assert response.status_code == 200
    assert "does not exist in Australia/Sydney" in response.get_data(as_text=True)
    assert db.session.scalars(select(Task.title)).all() == ["Call Zoe"]


def test_the_calendar_puts_a_task_on_the_users_local_day(client, world):
    agent, _, _ = world
    # 14:30 UTC on 6 December is 01:30 on 7 December in Sydney.
    create_task(
        _actor(agent),
        title="Early call",
        assignee_id=agent.user_id,
        due_at=datetime(2026, 12, 6, 14, 30, tzinfo=UTC),
    )
    db.session.commit()
    login(client, agent.user.username)

    def day(page: str, iso: str) -> str:
        return re.search(rf'<td id="day-{iso}"[^>]*>(.*?)</td>', page, re.S).group(1)

    month = _page(client, "/calendar/month?year=2026&month=12")
    assert "Times in Australia/Sydney" in month
    assert "Task: Early call" in day(month, "2026-12-07")
    assert "Task: Early call" not in day(month, "2026-12-06")
    assert 'title="07 Dec 2026 01:30 AEDT">01:30<' in day(month, "2026-12-07")
    # the lead's follow-up (03:05 UTC on the 6th) is at 14:05 on the 6th
    assert "Follow up: Zoe Harbour" in day(month, "2026-12-06")
    assert ">14:05<" in day(month, "2026-12-06")
    # the week of Monday 7 December starts at midnight in Sydney (13:00 UTC on the 6th):
    # the early call is in it, the follow-up of the 6th is not
    week = _page(client, "/calendar/week?date=2026-12-07")
    assert "Task: Early call" in day(week, "2026-12-07")
    assert "Follow up: Zoe Harbour" not in week


def test_the_client_timeline_reads_in_the_users_zone(client, world):
    agent, auditor, lead = world
    lead.status = "qualified"
    db.session.commit()
    customer = convert_lead(lead.id, _actor(agent))
    create_task(
        _actor(agent),
        title="Collect payslips",
        assignee_id=agent.user_id,
        due_at=FOLLOW_UP,
        client_id=customer.id,
    )
    db.session.commit()
    login(client, agent.user.username)
    page = _page(client, f"/clientview/timeline/{customer.id}")
    assert f"due {SYDNEY_TEXT}" in page
    assert " UTC" not in re.sub(r"<[^>]+>", " ", page.split('id="timeline"', 1)[1])
    assert re.search(r"\d\d \w{3} \d{4} \d\d:\d\d AEDT", page)
    client.get("/logout/")
    login(client, auditor.user.username)
    assert f"due {MUMBAI_TEXT}" in _page(client, f"/clientview/timeline/{customer.id}")


def test_reading_the_zone_costs_no_statement_on_a_list(client, world):
    """The zone comes with the signed-in user: a list costs what it did (no look-up per page
    or per row), however many times it shows."""
    from sqlalchemy import event

    agent, _, _ = world
    for n in range(5):
        make_lead(agent, next_follow_up_at=FOLLOW_UP + timedelta(hours=n))
    db.session.commit()
    login(client, agent.user.username)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = _page(client, "/leadview/list/")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert page.count("AEDT") >= 6
    zone_lookups = [s for s in statements if "staff_profile.user_id, branch.timezone" in s]
    assert not zone_lookups and len(statements) <= 8, statements


# ---- e-mail (PostgreSQL, a real SMTP server) -----------------------------------------------


def test_an_email_to_a_sydney_agent_tells_sydney_time(pg_app, mailbox):
    from app.comms.services import dispatch_outbox
    from tests.smtp_server import text_body

    sydney = make_branch("SYD", tz="Australia/Sydney")
    mumbai = make_branch("MUM", tz="Asia/Kolkata")
    agent = make_staff("Agent", sydney, "sydmail")
    manager = make_staff("Manager", mumbai, "mummanager")
    db.session.commit()
    manager_actor = Actor(manager.user_id, frozenset({"Admin"}), mumbai.id, "mummanager")
    create_task(manager_actor, title="Ring Zoe", assignee_id=agent.user_id, due_at=FOLLOW_UP)
    db.session.commit()
    dispatch_outbox()
    assert mailbox.wait_for(1)
    (message,) = mailbox.to(agent.user.email)
    assert SYDNEY_TEXT in message["Subject"]
    body = text_body(message)
    assert f"Due: {SYDNEY_TEXT}" in body
    assert MUMBAI_TEXT not in body and "UTC" not in body
    assert re.search(r"\(\d\d \w{3} \d{4} \d\d:\d\d AEDT\)", body)  # when it was sent


def test_an_email_to_a_client_is_in_the_clients_branchs_time(app, world):
    from app.comms.channels import EmailChannel
    from app.comms.services import notify

    agent, _, lead = world
    lead.status = "qualified"
    db.session.commit()
    customer = convert_lead(lead.id, _actor(agent))
    (row,) = notify(
        "welcome", "welcome:zoe", "Welcome", "Hello", client_id=customer.id, channels=("email",)
    )
    row.created_at = FOLLOW_UP
    db.session.commit()
    message = EmailChannel().build(row)
    text = message.get_body(("plain",)).get_content()
    assert f"({SYDNEY_TEXT})" in text
    assert SYDNEY_TEXT in message.get_body(("html",)).get_content()
