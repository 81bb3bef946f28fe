"""A client's timeline: every desk's events, newest first, filtered, paged, scoped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, literal, null, select, update

from app.clients.risk import QUESTIONS, assess_risk
from app.clients.timeline import TimelineEvent, register_timeline_source
from app.comms.models import Notification
from app.comms.services import notify
from app.core.types import UTCDateTime, utcnow
from app.documents.models import Document
from app.documents.services import find_owner, upload_document
from app.extensions import db
from app.leads.conversion import convert_lead
from app.leads.models import Interaction
from app.leads.services import add_interaction
from app.security.scoping import Actor
from app.tasks.models import Task
from app.tasks.services import create_task
from tests.support import api_token, login, make_branch, make_lead, make_staff

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def _actor(staff) -> Actor:
    return Actor(staff.user_id, frozenset({"Agent"}), staff.branch_id, staff.user.username)


@pytest.fixture
def history(pg_app):
    """A converted client with one event of each kind, days apart, oldest first."""
    branch = make_branch()
    agent = make_staff("Agent", branch)
    db.session.commit()
    actor = _actor(agent)
    lead = make_lead(agent, first_name="Asha", last_name="Verma", status="qualified")
    add_interaction(lead, actor, kind="call", outcome="keen on a loan")
    db.session.commit()
    client = convert_lead(lead.id, actor)
    db.session.commit()
    upload_document(find_owner(client_id=client.id), "pan_card", "pan.pdf", PDF, actor=actor)
    create_task(
        actor,
        title="Collect bank statements",
        assignee_id=agent.user_id,
        due_at=utcnow() + timedelta(days=2),
        client_id=client.id,
    )
    notify("welcome", f"welcome:{client.id}", "Welcome to FinCRM", "Hello", client_id=client.id)
    db.session.commit()
    assess_risk(client.id, {q.key: q.answers[1][0] for q in QUESTIONS}, actor)
    db.session.commit()
    now = utcnow()
    for model, column, days in (
        (Interaction, "occurred_at", 5),
        (Document, "uploaded_at", 4),
        (Task, "created_at", 3),
        (Notification, "created_at", 2),
    ):
        db.session.execute(update(model).values({column: now - timedelta(days=days)}))
    db.session.commit()
    return agent, client


def kinds_on(page: str) -> list[str]:
    return re.findall(r'class="timeline-event timeline-(\w+)"', page)


def test_the_timeline_shows_every_desk_newest_first(pg_client, history):
    agent, client = history
    login(pg_client, agent.user.username)
    page = pg_client.get(f"/clientview/timeline/{client.id}").get_data(as_text=True)
    # risk questionnaire (today) and the record's own changes come first, the call last.
    assert kinds_on(page)[-4:] == ["message", "task", "document", "interaction"]
    assert set(kinds_on(page)[:-4]) == {"risk", "record"}
    assert "Call: keen on a loan" in page
    assert "Document uploaded: pan card v1" in page
    assert "Task: Collect bank statements" in page
    assert "Risk questionnaire: moderate" in page
    assert "Client created" in page


def test_the_timeline_filters_by_kind(pg_client, history):
    agent, client = history
    login(pg_client, agent.user.username)
    page = pg_client.get(f"/clientview/timeline/{client.id}?kind=interaction&kind=task").get_data(
        as_text=True
    )
    assert kinds_on(page) == ["task", "interaction"]
    bad = pg_client.get(f"/clientview/timeline/{client.id}?before=last+tuesday")
    assert bad.status_code == 400 and "ISO date" in bad.get_data(as_text=True)


def test_another_agent_gets_not_found_and_compliance_sees_it(pg_client, history):
    agent, client = history
    other = make_staff("Agent", make_branch())
    compliance = make_staff("Compliance", make_branch())
    db.session.commit()
    login(pg_client, other.user.username)
    assert pg_client.get(f"/clientview/timeline/{client.id}").status_code == 404
    token = api_token(pg_client, other.user.username)
    api = pg_client.get(
        f"/api/v1/client/{client.id}/timeline", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 404
    pg_client.get("/logout/")
    login(pg_client, compliance.user.username)
    assert "Call: keen on a loan" in pg_client.get(f"/clientview/timeline/{client.id}").get_data(
        as_text=True
    )


def test_the_api_pages_through_the_whole_history_without_gaps(pg_client, history):
    agent, client = history
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    url = f"/api/v1/client/{client.id}/timeline"
    everything = pg_client.get(url, headers=auth).json["result"]
    assert len(everything) >= 6
    paged, before = [], None
    while True:
        query = {"limit": 2, **({"before": before} if before else {})}
        page = pg_client.get(url, query_string=query, headers=auth).json["result"]
        if not page:
            break
        paged += page
        before = page[-1]["at"]
    assert paged == everything
    bad = pg_client.get(url, query_string={"kind": "yacht"}, headers=auth)
    assert bad.status_code == 422 and "yacht" in bad.get_data(as_text=True)
    bad = pg_client.get(url, query_string={"before": "last tuesday"}, headers=auth)
    assert bad.status_code == 422


def test_a_later_desk_adds_its_events_by_registering_a_source(pg_client, history):
    from app.clients.models import Client
    from app.clients.timeline import TIMELINE_SOURCES

    agent, client = history

    def policy_event(row):
        return TimelineEvent(at=row.at, kind="insurance", title=f"Policy issued to {row.name}")

    # A kind no real desk registers, so taking it away again leaves the registry as it was.
    @register_timeline_source("insurance", "Insurance", policy_event)
    def policy_rows(client_id):
        return select(
            literal(utcnow() + timedelta(hours=1), UTCDateTime).label("at"), Client.name
        ).where(Client.id == client_id)

    try:
        login(pg_client, agent.user.username)
        page = pg_client.get(f"/clientview/timeline/{client.id}").get_data(as_text=True)
    finally:
        TIMELINE_SOURCES.pop("insurance")
    assert kinds_on(page)[0] == "insurance" and "Policy issued to Asha Verma" in page
    assert 'value="insurance"' in page  # and it can be filtered on


def test_a_source_whose_columns_a_timeline_cannot_hold_is_refused_by_name(pg_app, history):
    from app.clients.timeline import TIMELINE_SOURCES, client_timeline

    _, client = history
    register_timeline_source("broken", "Broken", lambda row: None)(
        lambda client_id: select(literal(utcnow(), UTCDateTime).label("at"), null().label("x"))
    )
    try:
        with pytest.raises(ValueError, match="'x' of the 'broken' select"):
            client_timeline(client.id, {"broken"})
    finally:
        TIMELINE_SOURCES.pop("broken")


def test_each_timeline_shows_its_own_clients_events_to_those_who_may_see_the_client(
    pg_client, history
):
    agent, client = history
    colleague = make_staff("Agent", agent.branch)
    manager = make_staff("Manager", agent.branch)
    other_manager = make_staff("Manager", make_branch())
    db.session.commit()
    lead = make_lead(colleague, first_name="Ravi", last_name="Kumar", status="qualified")
    add_interaction(lead, _actor(colleague), kind="meeting", outcome="wants a fixed deposit")
    db.session.commit()
    theirs = convert_lead(lead.id, _actor(colleague))
    db.session.commit()

    def page(username: str, client_id: int):
        pg_client.get("/logout/")
        login(pg_client, username)
        response = pg_client.get(f"/clientview/timeline/{client_id}")
        return response.status_code, response.get_data(as_text=True)

    status, mine = page(agent.user.username, client.id)
    assert status == 200 and "Call: keen on a loan" in mine
    assert "wants a fixed deposit" not in mine and "Ravi Kumar" not in mine
    assert page(agent.user.username, theirs.id)[0] == 404
    # Their manager sees both clients, each timeline with its own events only.
    _, first = page(manager.user.username, client.id)
    _, second = page(manager.user.username, theirs.id)
    assert "Call: keen on a loan" in first and "wants a fixed deposit" not in first
    assert "Meeting: wants a fixed deposit" in second and "keen on a loan" not in second
    assert page(other_manager.user.username, client.id)[0] == 404


def test_simultaneous_events_keep_the_order_of_the_desks(pg_client, history):
    agent, client = history
    moment = utcnow() - timedelta(days=10)
    for model, column in ((Interaction, "occurred_at"), (Task, "created_at")):
        db.session.execute(update(model).values({column: moment}))
    db.session.commit()
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    url = f"/api/v1/client/{client.id}/timeline"
    for _ in range(3):
        events = pg_client.get(url, query_string={"kind": ["task", "interaction"]}, headers=auth)
        assert [e["kind"] for e in events.json["result"]] == ["interaction", "task"]


def test_the_timeline_costs_the_same_statements_for_a_long_history_and_every_kind(
    pg_client, history
):
    agent, client = history
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    url = f"/api/v1/client/{client.id}/timeline"

    def selects(**query) -> int:
        seen = []

        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert pg_client.get(url, query_string=query, headers=auth).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    short = selects()
    # Every kind of event is read in the same one statement: asking for one kind costs as much.
    assert selects(kind="interaction") == short
    lead = db.session.scalar(select(Interaction)).lead
    for n in range(30):
        add_interaction(lead, _actor(agent), kind="note", outcome=f"note {n}")
    db.session.execute(update(Interaction).values(client_id=client.id))
    db.session.commit()
    assert selects() == short
    assert len(pg_client.get(url, headers=auth).json["result"]) > 30
