"""Tasks on PostgreSQL: the assignee hears of a new task in the same transaction, agents keep to
their own tasks, My tasks and Overdue list the right rows, reminders come once per due time."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.comms.models import Notification
from app.core.errors import FieldError
from app.core.jobs import run_job
from app.core.types import utcnow
from app.extensions import db
from app.tasks import services
from app.tasks.models import Task
from tests.support import api_token, count, login, make_branch, make_lead, make_staff

FORM_TIME = "%Y-%m-%d %H:%M:%S"
MUMBAI = ZoneInfo("Asia/Kolkata")
"""The branch of the people typing times on the forms: they type them in India's time."""


@pytest.fixture
def world(pg_app):
    mumbai, sydney = make_branch("MUM"), make_branch("SYD", tz="Australia/Sydney")
    people = {
        "agent_a": make_staff("Agent", mumbai),
        "agent_b": make_staff("Agent", mumbai),
        "agent_syd": make_staff("Agent", sydney),
        "manager": make_staff("Manager", mumbai),
        "admin": make_staff("Admin", mumbai),
    }
    db.session.commit()
    users = {key: profile.user.username for key, profile in people.items()}
    ids = {key: profile.user_id for key, profile in people.items()}
    return users, ids


def _task(assignee_id: int, title: str, due_in: timedelta = timedelta(days=2), **fields):
    """A task made by a job-like caller (no signed-in user), committed."""
    task = services.create_task(
        title=title, assignee_id=assignee_id, due_at=utcnow() + due_in, **fields
    )
    db.session.commit()
    return task


def _notifications(kind: str | None = None, user_id: int | None = None) -> list[Notification]:
    db.session.expire_all()
    query = select(Notification).order_by(Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    if user_id:
        query = query.where(Notification.recipient_user_id == user_id)
    return list(db.session.scalars(query))


def _auth(client, username):
    return {"Authorization": f"Bearer {api_token(client, username)}"}


# ---- assignment and the outbox --------------------------------------------------------------


def test_a_task_made_on_the_screen_tells_the_agent_by_email_and_in_app(pg_client, world):
    users, ids = world
    login(pg_client, users["admin"])
    due = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    response = pg_client.post(
        "/taskview/add",
        data={
            "title": "  Call back about the SIP  ",
            "description": "Wants to raise the monthly amount.",
            "due_at": due.astimezone(MUMBAI).strftime(FORM_TIME),
            "priority": "high",
            "status": "open",
            "assignee": str(ids["agent_a"]),
        },
    )
    assert response.status_code == 302

    task = db.session.scalars(select(Task)).one()
    assert task.title == "Call back about the SIP"
    assert task.assignee_id == ids["agent_a"]
    assert task.created_by_id == ids["admin"]
    assert task.branch.code == "MUM"
    assert task.due_at == due

    rows = _notifications("task_assigned")
    assert {row.channel for row in rows} == {"email", "in_app"}
    for row in rows:
        assert row.recipient_user_id == ids["agent_a"]
        assert row.idempotency_key == f"task-assigned:{task.id}:{ids['agent_a']}:{row.channel}"
        assert row.link == f"/taskview/show/{task.id}"
        assert (row.related_type, row.related_id) == ("task", str(task.id))
        assert "Call back about the SIP" in row.subject
    assert next(r for r in rows if r.channel == "email").address.endswith("@test.example")

    # The agent finds it in their notification centre with a link to the task.
    agent = pg_client.application.test_client()
    login(agent, users["agent_a"])
    page = agent.get("/notifications/").get_data(as_text=True)
    assert "Call back about the SIP" in page and f"/taskview/show/{task.id}" in page


def test_a_task_made_through_the_api_tells_the_agent(pg_client, world):
    users, ids = world
    due = utcnow() + timedelta(hours=5)
    response = pg_client.post(
        "/api/v1/task/",
        json={
            "title": "Collect the signed mandate",
            "due_at": due.isoformat(),
            "priority": "urgent",
            "assignee_id": ids["agent_b"],
        },
        headers=_auth(pg_client, users["admin"]),
    )
    assert response.status_code == 201, response.json
    task_id = response.json["id"]
    assert response.json["result"]["status"] == "open"
    rows = _notifications("task_assigned")
    assert sorted((r.channel, r.recipient_user_id, r.related_id) for r in rows) == [
        ("email", ids["agent_b"], str(task_id)),
        ("in_app", ids["agent_b"], str(task_id)),
    ]


def test_an_agent_adding_their_own_task_is_notified_too(pg_client, world):
    users, ids = world
    response = pg_client.post(
        "/api/v1/task/",
        json={
            "title": "Prepare the review pack",
            "due_at": (utcnow() + timedelta(days=3)).isoformat(),
        },
        headers=_auth(pg_client, users["agent_a"]),
    )
    assert response.status_code == 201, response.json
    task = db.session.get(Task, response.json["id"])
    assert task.assignee_id == task.created_by_id == ids["agent_a"]  # blank assignee = me
    assert {r.channel for r in _notifications("task_assigned", ids["agent_a"])} == {
        "email",
        "in_app",
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "bad\x00title"}, "title"),
        ({"priority": "whenever"}, "priority"),
        ({"status": "someday"}, "status"),
        ({"due_at": None}, "due_at"),
    ],
)
def test_a_refused_task_leaves_neither_task_nor_notification(pg_client, world, payload, field):
    users, ids = world
    body = {
        "title": "Fine title",
        "due_at": (utcnow() + timedelta(days=1)).isoformat(),
        "assignee_id": ids["agent_a"],
        **payload,
    }
    response = pg_client.post("/api/v1/task/", json=body, headers=_auth(pg_client, users["admin"]))
    assert response.status_code in (400, 422), response.json
    assert field in str(response.json["message"])
    assert count(Task) == 0
    assert count(Notification) == 0


def test_a_refused_task_on_the_screen_shows_why_and_saves_nothing(pg_client, world):
    users, ids = world
    login(pg_client, users["admin"])
    response = pg_client.post(
        "/taskview/add",
        data={
            "title": "Lead task",
            "due_at": (utcnow() + timedelta(days=1)).strftime(FORM_TIME),
            "priority": "normal",
            "status": "open",
            "assignee": str(ids["agent_a"]),
            "description": "nul \x00 inside",
        },
        follow_redirects=True,
    )
    assert "contains control characters" in response.get_data(as_text=True)
    assert count(Task) == 0 and count(Notification) == 0


def test_the_task_and_its_notification_are_written_together_or_not_at_all(
    pg_client, world, monkeypatch
):
    """If anything fails after the task was flushed (here: while notifying), the task is not
    left behind, and no outbox row either."""
    users, ids = world
    real_notify = services.notify

    def notify_then_fail(*args, **kwargs):
        real_notify(*args, **kwargs)
        raise FieldError("the outbox refused the message.", "assignee")

    monkeypatch.setattr(services, "notify", notify_then_fail)
    due = (utcnow() + timedelta(days=1)).isoformat()
    response = pg_client.post(
        "/api/v1/task/",
        json={"title": "Half written?", "due_at": due, "assignee_id": ids["agent_a"]},
        headers=_auth(pg_client, users["admin"]),
    )
    assert response.status_code == 422
    login(pg_client, users["admin"])
    pg_client.post(
        "/taskview/add",
        data={
            "title": "Half written on the screen?",
            "due_at": (utcnow() + timedelta(days=1)).strftime(FORM_TIME),
            "priority": "normal",
            "status": "open",
            "assignee": str(ids["agent_a"]),
        },
    )
    assert count(Task) == 0
    assert count(Notification) == 0


def test_reassigning_a_task_tells_the_new_assignee_and_editing_it_tells_nobody(pg_client, world):
    users, ids = world
    task = _task(ids["agent_a"], "Renewal call")
    assert len(_notifications("task_assigned", ids["agent_a"])) == 2
    auth = _auth(pg_client, users["admin"])

    response = pg_client.put(
        f"/api/v1/task/{task.id}", json={"title": "Renewal call (2)"}, headers=auth
    )
    assert response.status_code == 200, response.json
    assert len(_notifications("task_assigned")) == 2  # an edit is not a new assignment

    response = pg_client.put(
        f"/api/v1/task/{task.id}", json={"assignee_id": ids["agent_b"]}, headers=auth
    )
    assert response.status_code == 200, response.json
    assert {r.channel for r in _notifications("task_assigned", ids["agent_b"])} == {
        "email",
        "in_app",
    }
    db.session.expire_all()
    assert db.session.get(Task, task.id).assignee_id == ids["agent_b"]

    # And on the screen: reassign to agent_a again through the edit form.
    login(pg_client, users["admin"])
    current = db.session.get(Task, task.id)
    pg_client.post(
        f"/taskview/edit/{task.id}",
        data={
            "title": current.title,
            "due_at": current.due_at.astimezone(MUMBAI).strftime(FORM_TIME),
            "priority": "normal",
            "status": "in_progress",
            "assignee": str(ids["manager"]),
        },
    )
    db.session.expire_all()
    assert db.session.get(Task, task.id).assignee_id == ids["manager"]
    assert db.session.get(Task, task.id).status == "in_progress"
    assert len(_notifications("task_assigned", ids["manager"])) == 2


def test_done_records_when_and_reopening_clears_it(pg_client, world):
    users, ids = world
    task = _task(ids["agent_a"], "Send the statement")
    auth = _auth(pg_client, users["agent_a"])
    response = pg_client.put(f"/api/v1/task/{task.id}", json={"status": "done"}, headers=auth)
    assert response.status_code == 200, response.json
    assert response.json["result"]["status"] == "done"
    db.session.expire_all()
    assert db.session.get(Task, task.id).completed_at is not None
    pg_client.put(f"/api/v1/task/{task.id}", json={"status": "open"}, headers=auth)
    db.session.expire_all()
    assert db.session.get(Task, task.id).completed_at is None


# ---- who may assign what, who sees what -------------------------------------------------------


def test_an_agent_cannot_give_a_task_to_another_agent(pg_client, world):
    users, ids = world
    response = pg_client.post(
        "/api/v1/task/",
        json={
            "title": "Your problem now",
            "due_at": (utcnow() + timedelta(days=1)).isoformat(),
            "assignee_id": ids["agent_b"],
        },
        headers=_auth(pg_client, users["agent_a"]),
    )
    assert response.status_code == 403
    assert "only a manager" in response.json["message"]["assignee"][0]

    login(pg_client, users["agent_a"])
    page = pg_client.post(
        "/taskview/add",
        data={
            "title": "Your problem now",
            "due_at": (utcnow() + timedelta(days=1)).strftime(FORM_TIME),
            "priority": "normal",
            "status": "open",
            "assignee": str(ids["agent_b"]),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    # The drop-down does not even offer agent_b; a forged value is refused all the same.
    assert "Not a valid choice" in page or "only a manager" in page
    assert count(Task) == 0 and count(Notification) == 0


def test_an_agent_cannot_hand_over_a_task_they_were_given(pg_client, world):
    users, ids = world
    task = _task(ids["agent_a"], "Mine to keep")
    response = pg_client.put(
        f"/api/v1/task/{task.id}",
        json={"assignee_id": ids["agent_b"]},
        headers=_auth(pg_client, users["agent_a"]),
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Task, task.id).assignee_id == ids["agent_a"]


def test_a_manager_cannot_give_a_task_to_another_branch(pg_client, world):
    users, ids = world
    response = pg_client.post(
        "/api/v1/task/",
        json={
            "title": "Over the sea",
            "due_at": (utcnow() + timedelta(days=1)).isoformat(),
            "assignee_id": ids["agent_syd"],
        },
        headers=_auth(pg_client, users["manager"]),
    )
    assert response.status_code == 403
    assert "within their branch" in response.json["message"]["assignee"][0]
    assert count(Task) == 0


def test_a_manager_gives_a_task_to_an_agent_of_their_branch(pg_client, world):
    users, ids = world
    response = pg_client.post(
        "/api/v1/task/",
        json={
            "title": "Visit the new client",
            "due_at": (utcnow() + timedelta(days=1)).isoformat(),
            "assignee_id": ids["agent_a"],
        },
        headers=_auth(pg_client, users["manager"]),
    )
    assert response.status_code == 201, response.json
    assert len(_notifications("task_assigned", ids["agent_a"])) == 2


def test_a_related_lead_must_be_one_the_agent_can_see(pg_client, world):
    users, ids = world
    from app.org.models import StaffProfile

    other = db.session.scalars(
        select(StaffProfile).where(StaffProfile.user_id == ids["agent_b"])
    ).one()
    mine = db.session.scalars(
        select(StaffProfile).where(StaffProfile.user_id == ids["agent_a"])
    ).one()
    their_lead, my_lead = make_lead(other), make_lead(mine)
    db.session.commit()
    auth = _auth(pg_client, users["agent_a"])
    body = {"title": "About a lead", "due_at": (utcnow() + timedelta(days=1)).isoformat()}
    response = pg_client.post(
        "/api/v1/task/", json={**body, "lead_id": their_lead.id}, headers=auth
    )
    assert response.status_code == 422
    assert "lead" in response.json["message"]
    response = pg_client.post("/api/v1/task/", json={**body, "lead_id": my_lead.id}, headers=auth)
    assert response.status_code == 201, response.json
    assert db.session.get(Task, response.json["id"]).lead_id == my_lead.id


def test_a_task_keeps_its_lead_when_the_lead_moves_to_someone_else(pg_client, world):
    users, ids = world
    from app.leads.models import Lead
    from app.org.models import StaffProfile

    mine = db.session.scalars(
        select(StaffProfile).where(StaffProfile.user_id == ids["agent_a"])
    ).one()
    lead = make_lead(mine)
    task = _task(ids["agent_a"], "Chase the lead", lead_id=lead.id)
    db.session.get(Lead, lead.id).assigned_agent_id = ids["agent_b"]
    db.session.commit()
    response = pg_client.put(
        f"/api/v1/task/{task.id}",
        json={"status": "in_progress"},
        headers=_auth(pg_client, users["agent_a"]),
    )
    assert response.status_code == 200, response.json
    db.session.expire_all()
    assert db.session.get(Task, task.id).lead_id == lead.id


def test_each_agent_sees_only_their_own_tasks_on_every_path(pg_client, world):
    users, ids = world
    tasks = {
        "a": _task(ids["agent_a"], "Alpha task"),
        "b": _task(ids["agent_b"], "Bravo task"),
        "syd": _task(ids["agent_syd"], "Sydney task"),
    }
    task_ids = {key: task.id for key, task in tasks.items()}
    client = pg_client.application.test_client()
    login(client, users["agent_a"])
    for path in ("/taskview/list/", "/mytasksview/list/"):
        page = client.get(path).get_data(as_text=True)
        assert "Alpha task" in page
        assert "Bravo task" not in page and "Sydney task" not in page
    assert client.get(f"/taskview/show/{task_ids['a']}").status_code == 200
    assert client.get(f"/taskview/edit/{task_ids['a']}").status_code == 200
    for other in ("b", "syd"):
        assert client.get(f"/taskview/show/{task_ids[other]}").status_code == 404
        assert client.get(f"/taskview/edit/{task_ids[other]}").status_code == 404

    auth = _auth(client, users["agent_a"])
    listing = client.get("/api/v1/task/?q=(page_size:100)", headers=auth)
    assert {row["id"] for row in listing.json["result"]} == {task_ids["a"]}
    assert client.get(f"/api/v1/task/{task_ids['b']}", headers=auth).status_code == 404
    response = client.put(f"/api/v1/task/{task_ids['b']}", json={"title": "Hacked"}, headers=auth)
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Task, task_ids["b"]).title == "Bravo task"

    # The manager sees the branch, not Sydney.
    manager = pg_client.application.test_client()
    auth = _auth(manager, users["manager"])
    listing = manager.get("/api/v1/task/?q=(page_size:100)", headers=auth)
    assert {row["id"] for row in listing.json["result"]} == {task_ids["a"], task_ids["b"]}


# ---- the lists ----------------------------------------------------------------------------


def test_my_tasks_lists_only_what_is_assigned_to_me(pg_client, world):
    users, ids = world
    _task(ids["admin"], "Admin's own errand")
    _task(ids["agent_a"], "Agent's errand")
    login(pg_client, users["admin"])
    mine = pg_client.get("/mytasksview/list/").get_data(as_text=True)
    assert "Admin&#39;s own errand" in mine or "Admin's own errand" in mine
    assert "Agent&#39;s errand" not in mine and "Agent's errand" not in mine
    everything = pg_client.get("/taskview/list/").get_data(as_text=True)
    assert "own errand" in everything and "s errand" in everything.replace("own errand", "")


def test_overdue_lists_open_and_in_progress_tasks_past_due(pg_client, world):
    users, ids = world
    late = timedelta(hours=-3)
    _task(ids["agent_a"], "Late and open", late)
    _task(ids["agent_a"], "Late and started", late, status="in_progress")
    _task(ids["agent_a"], "Late but done", late, status="done")
    _task(ids["agent_a"], "Late but cancelled", late, status="cancelled")
    _task(ids["agent_a"], "Not due yet", timedelta(hours=3))
    _task(ids["agent_b"], "Someone else late", late)
    login(pg_client, users["agent_a"])
    page = pg_client.get("/overduetasksview/list/").get_data(as_text=True)
    assert "Late and open" in page and "Late and started" in page
    for absent in ("Late but done", "Late but cancelled", "Not due yet", "Someone else late"):
        assert absent not in page
    manager = pg_client.application.test_client()
    login(manager, users["manager"])
    page = manager.get("/overduetasksview/list/").get_data(as_text=True)
    assert "Late and open" in page and "Someone else late" in page
    assert "Not due yet" not in page
    # Read-only lists: adding goes through All tasks.
    assert manager.get("/overduetasksview/add").status_code == 404  # a list only: no add page


# ---- reminders ----------------------------------------------------------------------------


def test_a_task_due_soon_is_reminded_once_and_again_when_its_due_time_moves(pg_app, world):
    _, ids = world
    soon = _task(ids["agent_a"], "Due soon", timedelta(minutes=30))
    _task(ids["agent_a"], "Due later", timedelta(hours=5))
    _task(ids["agent_a"], "Soon but done", timedelta(minutes=20), status="done")

    assert run_job("app.tasks.jobs.send_task_reminders") == {"task_due": 1, "task_overdue": 0}
    services.send_task_reminders()
    rows = _notifications("task_due")
    assert sorted(r.channel for r in rows) == ["email", "in_app"]
    assert {r.related_id for r in rows} == {str(soon.id)}
    assert all(r.recipient_user_id == ids["agent_a"] for r in rows)

    # Moving the due time re-arms the reminder.
    task = db.session.get(Task, soon.id)
    task.due_at = task.due_at + timedelta(minutes=10)
    services.save_task(task)
    db.session.commit()
    services.send_task_reminders()
    services.send_task_reminders()
    assert len(_notifications("task_due")) == 4


def test_a_late_task_gets_one_overdue_notice(pg_app, world, monkeypatch):
    _, ids = world
    late = _task(ids["agent_b"], "Already late", timedelta(minutes=-5))
    monkeypatch.setitem(pg_app.config, "CRM_TASK_REMINDER_MINUTES", 10)
    _task(ids["agent_b"], "Outside a 10 minute window", timedelta(minutes=30))
    assert services.send_task_reminders() == {"task_due": 0, "task_overdue": 1}
    assert services.send_task_reminders() == {"task_due": 0, "task_overdue": 0}
    rows = _notifications("task_overdue")
    assert sorted(r.channel for r in rows) == ["email", "in_app"]
    assert {r.related_id for r in rows} == {str(late.id)}
    assert rows[0].idempotency_key.startswith(f"task-overdue:{late.id}:")
    assert _notifications("task_due") == []


def test_the_assignee_must_be_staff(pg_app, world):
    _, ids = world
    stranger = User(first_name="No", last_name="Profile", username="nobody", email="n@x.example")
    db.session.add(stranger)
    db.session.flush()
    with pytest.raises(FieldError, match="not a member of staff"):
        services.create_task(
            title="Lost", assignee_id=stranger.id, due_at=utcnow() + timedelta(days=1)
        )
    db.session.rollback()


def test_reminders_and_lists_work_on_the_embedded_sqlite_database_too(client):
    """The embedded default (SQLite, inline jobs) runs the same reminder job."""
    branch = make_branch()
    agent = make_staff("Agent", branch)
    db.session.commit()
    soon = _task(agent.user_id, "SQLite soon", timedelta(minutes=15))
    late = _task(agent.user_id, "SQLite late", timedelta(minutes=-15))
    _task(agent.user_id, "SQLite later", timedelta(days=1))
    assert services.send_task_reminders() == {"task_due": 1, "task_overdue": 1}
    assert services.send_task_reminders() == {"task_due": 0, "task_overdue": 0}
    assert {r.related_id for r in _notifications("task_due")} == {str(soon.id)}
    assert {r.related_id for r in _notifications("task_overdue")} == {str(late.id)}
    login(client, agent.user.username)
    page = client.get("/overduetasksview/list/").get_data(as_text=True)
    assert "SQLite late" in page and "SQLite soon" not in page and "SQLite later" not in page
