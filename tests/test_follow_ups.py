"""A lead's follow-up time reminds its agent once, and once missed becomes a task on their list."""

from __future__ import annotations

from datetime import timedelta

from app.comms.models import Notification
from app.core.types import utcnow
from app.extensions import db
from app.leads.follow_ups import sweep_follow_ups
from app.tasks.models import Task
from tests.support import login, make_branch, make_lead, make_staff


def test_a_follow_up_reminds_once_then_becomes_an_overdue_task(pg_app, pg_client):
    agent = make_staff("Agent", make_branch())
    soon = make_lead(agent, first_name="Soon", next_follow_up_at=utcnow() + timedelta(minutes=20))
    missed = make_lead(agent, first_name="Missed", next_follow_up_at=utcnow() - timedelta(hours=2))
    make_lead(agent, first_name="Later", next_follow_up_at=utcnow() + timedelta(days=3))
    db.session.commit()

    assert sweep_follow_ups() == {"reminded": 1, "tasks_created": 1}
    assert sweep_follow_ups() == {"reminded": 1, "tasks_created": 0}  # nothing twice
    reminders = db.session.query(Notification).filter_by(kind="follow_up_due").all()
    assert {n.channel for n in reminders} == {"email", "in_app"}
    assert all(n.related_id == str(soon.id) for n in reminders)
    (task,) = db.session.query(Task).all()
    assert (task.lead_id, task.assignee_id, task.priority) == (missed.id, agent.user_id, "high")
    assert task.title == f"Follow up with Missed {missed.last_name}"

    login(pg_client, agent.user.username)
    overdue = pg_client.get("/overduetasksview/list/").get_data(as_text=True)
    assert "Follow up with Missed" in overdue

    soon.next_follow_up_at = utcnow() + timedelta(minutes=40)  # moved: a new reminder is due
    db.session.commit()
    assert sweep_follow_ups()["reminded"] == 1
    assert (
        db.session.query(Notification).filter_by(kind="follow_up_due", channel="email").count() == 2
    )
