"""The calendar on PostgreSQL: month and week pages put each task and follow-up in its day, and
the private ICS feed lists exactly the owner's items, answers 404 for a wrong, replaced or revoked
link, and only the SHA-256 of the secret is stored."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import event, text

from app.core.types import utcnow
from app.extensions import db
from app.org.models import StaffProfile
from app.tasks import calendar as task_calendar
from app.tasks.calendar import CalendarEvent, register_calendar_source
from app.tasks.services import create_task
from tests.support import login, make_branch, make_lead, make_staff


@pytest.fixture
def world(pg_app):
    branch = make_branch("MUM")
    agent_a = make_staff("Agent", branch)
    agent_b = make_staff("Agent", branch)
    db.session.commit()
    return agent_a, agent_b


def _task(profile: StaffProfile, title: str, due_at: datetime, **fields):
    task = create_task(title=title, assignee_id=profile.user_id, due_at=due_at, **fields)
    db.session.commit()
    return task


def _day_cell(page: str, day: str) -> str:
    match = re.search(rf'<td id="day-{day}"[^>]*>(.*?)</td>', page, re.S)
    assert match, f"no cell for {day}"
    return match.group(1)


def _dated_world(world):
    agent_a, agent_b = world
    at = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
    items = {
        "task": _task(agent_a, "Review portfolio", at),
        "late_evening": _task(agent_a, "Evening call", datetime(2027, 3, 31, 23, 45, tzinfo=UTC)),
        "cancelled": _task(agent_a, "Called off", at, status="cancelled"),
        "other": _task(agent_b, "Not yours", at),
        "follow_up": make_lead(
            agent_a,
            first_name="Priya",
            last_name="Follow",
            next_follow_up_at=at + timedelta(days=2),
        ),
        "other_follow_up": make_lead(
            agent_b, first_name="Ravi", last_name="Elsewhere", next_follow_up_at=at
        ),
    }
    db.session.commit()
    return items


def test_the_month_shows_my_tasks_and_follow_ups_in_their_days(pg_client, world):
    agent_a, _ = world
    items = _dated_world(world)
    login(pg_client, agent_a.user.username)
    response = pg_client.get("/calendar/month?year=2027&month=3")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "March 2027" in page

    tenth = _day_cell(page, "2027-03-10")
    assert "Task: Review portfolio" in tenth and "15:00" in tenth  # 09:30 UTC in Mumbai (IST)
    assert f"/taskview/show/{items['task'].id}" in tenth
    assert "Follow up: Priya Follow" in _day_cell(page, "2027-03-12")
    assert f"/leadview/show/{items['follow_up'].id}" in page
    # 23:45 UTC on the 31st is 05:15 on 1 April in Mumbai: the day of the agent's branch
    assert "Evening call" in _day_cell(page, "2027-04-01")
    assert "Evening call" not in _day_cell(page, "2027-03-31")
    assert "Review portfolio" not in _day_cell(page, "2027-03-11")
    for absent in ("Not yours", "Ravi", "Called off"):
        assert absent not in page
    # Previous and next months are one click away.
    assert "/calendar/month?year=2027&amp;month=2" in page or "month=2&amp;year=2027" in page
    assert "/calendar/month?year=2027&amp;month=4" in page or "month=4&amp;year=2027" in page
    assert pg_client.get("/calendar/month?year=2027&month=13").status_code == 400


def test_the_week_shows_seven_days_with_my_items(pg_client, world):
    agent_a, _ = world
    _dated_world(world)
    login(pg_client, agent_a.user.username)
    page = pg_client.get("/calendar/week?date=2027-03-11").get_data(as_text=True)
    # The week of Thursday 11 March 2027 runs Monday 8 to Sunday 14.
    assert re.findall(r'<td id="day-(\d{4}-\d\d-\d\d)"', page) == [
        f"2027-03-{day:02d}" for day in range(8, 15)
    ]
    assert "Task: Review portfolio" in _day_cell(page, "2027-03-10")
    assert "Follow up: Priya Follow" in _day_cell(page, "2027-03-12")
    assert "Not yours" not in page and "Ravi" not in page
    assert "date=2027-03-01" in page and "date=2027-03-15" in page  # previous / next week
    assert pg_client.get("/calendar/week?date=11-03-2027").status_code == 400


def test_every_source_makes_one_query_whatever_the_number_of_items(pg_app, world):
    agent_a, _ = world
    start = datetime(2027, 5, 1, tzinfo=UTC)
    for n in range(12):
        _task(agent_a, f"Task {n}", start + timedelta(days=n, hours=3))
        make_lead(agent_a, next_follow_up_at=start + timedelta(days=n, hours=5))
    db.session.commit()
    user_id = agent_a.user_id
    db.session.expire_all()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        events = task_calendar.events_for(user_id, start, start + timedelta(days=31))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(events) == 24
    assert len(statements) == len(task_calendar.CALENDAR_SOURCES)  # one query each
    assert [e.start for e in events] == sorted(e.start for e in events)


def test_a_desk_can_add_its_own_source(pg_client, world):
    agent_a, _ = world

    def repayments(user_id, start, end):
        day = datetime(2027, 3, 20, 6, 0, tzinfo=UTC)
        if user_id == agent_a.user_id and start <= day < end:
            return [CalendarEvent("Repayment due: loan 7", day, None, "/loan/7", "repayment")]
        return []

    register_calendar_source(repayments)
    try:
        login(pg_client, agent_a.user.username)
        page = pg_client.get("/calendar/month?year=2027&month=3").get_data(as_text=True)
        assert "Repayment due: loan 7" in _day_cell(page, "2027-03-20")
    finally:
        task_calendar.CALENDAR_SOURCES.remove(repayments)


# ---- the private feed ---------------------------------------------------------------------


def _make_feed_link(client) -> str:
    page = client.post("/calendar/feed/new").get_data(as_text=True)
    match = re.search(r'id="feed-url" readonly value="(http[^"]+\.ics)"', page)
    assert match, "the new feed link is shown once"
    return match.group(1)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_feed_lists_exactly_my_tasks_and_follow_ups(pg_client, world):
    agent_a, agent_b = world
    now = utcnow()
    mine = [
        _task(agent_a, "Soon", now + timedelta(days=1)),
        _task(agent_a, "Next month", now + timedelta(days=40)),
        _task(agent_a, "Last week", now - timedelta(days=7), status="done"),
    ]
    _task(agent_a, "Too old", now - timedelta(days=45))
    _task(agent_a, "Cancelled", now + timedelta(days=2), status="cancelled")
    _task(agent_b, "Someone else's", now + timedelta(days=1))
    lead = make_lead(agent_a, first_name="Asha", next_follow_up_at=now + timedelta(days=3))
    make_lead(agent_b, first_name="Bela", next_follow_up_at=now + timedelta(days=3))
    db.session.commit()

    login(pg_client, agent_a.user.username)
    url = _make_feed_link(pg_client)
    assert url.startswith("http://localhost/calendar/feed/") and url.endswith(".ics")

    anonymous = pg_client.application.test_client()  # calendar apps do not sign in
    response = anonymous.get(_path(url))
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.data)
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert {str(e["UID"]) for e in events} == {f"task-{t.id}@fincrm" for t in mine} | {
        f"lead-follow-up-{lead.id}@fincrm"
    }
    soon = next(e for e in events if str(e["UID"]) == f"task-{mine[0].id}@fincrm")
    assert str(soon["SUMMARY"]) == "Task: Soon"
    assert abs(soon.decoded("DTSTART") - mine[0].due_at) < timedelta(seconds=1)
    assert str(soon["URL"]).endswith(f"/taskview/show/{mine[0].id}")
    body = response.get_data(as_text=True)
    assert "Someone else" not in body and "Bela" not in body and "Too old" not in body


def test_a_wrong_token_answers_404(pg_client, world):
    assert pg_client.get("/calendar/feed/not-a-real-token.ics").status_code == 404
    assert pg_client.get("/calendar/feed/.ics").status_code == 404


def test_a_revoked_or_replaced_link_answers_404(pg_client, world):
    agent_a, _ = world
    login(pg_client, agent_a.user.username)
    anonymous = pg_client.application.test_client()

    first = _make_feed_link(pg_client)
    assert anonymous.get(_path(first)).status_code == 200
    second = _make_feed_link(pg_client)  # replace: the old link stops working
    assert anonymous.get(_path(first)).status_code == 404
    assert anonymous.get(_path(second)).status_code == 200

    page = pg_client.post("/calendar/feed/revoke", follow_redirects=True).get_data(as_text=True)
    assert "no longer works" in page and "was revoked" in page
    assert anonymous.get(_path(second)).status_code == 404
    # The page no longer shows a secret once it has been shown.
    assert ".ics" not in pg_client.get("/calendar/month").get_data(as_text=True)


def test_only_the_hash_of_the_secret_is_stored(pg_client, world):
    agent_a, _ = world
    login(pg_client, agent_a.user.username)
    secret = _path(_make_feed_link(pg_client)).rsplit("/", 1)[1].removesuffix(".ics")
    rows = db.session.execute(
        text("SELECT user_id, token_hash, revoked_at FROM calendar_feed_token")
    ).all()
    assert len(rows) == 1
    user_id, token_hash, revoked_at = rows[0]
    assert user_id == agent_a.user_id and revoked_at is None
    assert token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in token_hash
    # Nor does the audit log keep the secret or its hash.
    changes = db.session.execute(
        text("SELECT coalesce(string_agg(changes, ' '), '') FROM audit_log")
    ).scalar_one()
    assert secret not in changes and token_hash not in changes


def test_another_user_cannot_revoke_or_see_my_link(pg_client, world):
    agent_a, agent_b = world
    login(pg_client, agent_a.user.username)
    url = _make_feed_link(pg_client)
    other = pg_client.application.test_client()
    login(other, agent_b.user.username)
    page = other.get("/calendar/month").get_data(as_text=True)
    assert "You have no feed link yet" in page
    other.post("/calendar/feed/revoke")
    assert pg_client.application.test_client().get(_path(url)).status_code == 200


def test_the_calendar_and_feed_work_on_the_embedded_sqlite_database_too(client):
    agent = make_staff("Agent", make_branch())
    db.session.commit()
    beyond_the_feed = (utcnow() + timedelta(days=400)).replace(hour=9, minute=30)
    _task(agent, "SQLite review", beyond_the_feed)
    _task(agent, "SQLite feed item", utcnow() + timedelta(days=2))
    login(client, agent.user.username)
    page = client.get(
        f"/calendar/month?year={beyond_the_feed.year}&month={beyond_the_feed.month}"
    ).get_data(as_text=True)
    assert "SQLite review" in _day_cell(page, beyond_the_feed.date().isoformat())
    response = client.application.test_client().get(_path(_make_feed_link(client)))
    assert response.status_code == 200
    summaries = {
        str(c["SUMMARY"]) for c in Calendar.from_ical(response.data).walk() if c.name == "VEVENT"
    }
    assert summaries == {"Task: SQLite feed item"}
