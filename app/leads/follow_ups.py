"""Follow-ups: a lead's ``next_follow_up_at`` reminds its agent before the time, and once it has
passed becomes a task on the agent's list (and so in Overdue and the calendar). Each once."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select

from app.comms.services import Message, notify_many
from app.core.localtime import format_local, zones_of_users
from app.core.types import utcnow
from app.core.validators import clean_text
from app.extensions import db
from app.leads.models import OPEN_LEAD_STATUSES, Lead
from app.security.scoping import UNSCOPED

FOLLOW_UP_TITLE = "Follow up with {name}"
OVERDUE_LOOKBACK = timedelta(days=30)
"""Older missed follow-ups were handled by earlier sweeps; bounding the scan keeps it cheap."""


def _key(lead: Lead) -> str:
    return f"follow-up-due:{lead.id}:{lead.next_follow_up_at.isoformat()}"


def sweep_follow_ups(now: datetime | None = None) -> dict[str, int]:
    """Remind agents of follow-ups due within ``CRM_TASK_REMINDER_MINUTES``; turn missed ones into
    tasks. Set-based: one query per rule, the reminders and the tasks' assignment messages
    written in bulk (``notify_many``), the tasks added in one flush. Idempotent, commits (a job's
    unit of work)."""
    from app.org.models import StaffProfile
    from app.tasks.models import Task
    from app.tasks.services import assignment_message

    now = now or utcnow()
    minutes = int(current_app.config.get("CRM_TASK_REMINDER_MINUTES", 60))
    open_assigned = (Lead.status.in_(OPEN_LEAD_STATUSES), Lead.assigned_agent_id.is_not(None))
    soon = list(
        db.session.scalars(
            select(Lead).where(
                *open_assigned,
                Lead.next_follow_up_at >= now,
                Lead.next_follow_up_at <= now + timedelta(minutes=minutes),
            ),
            execution_options=UNSCOPED,
        )
    )
    messages = []
    zones = zones_of_users(lead.assigned_agent_id for lead in soon)  # one statement
    for lead in soon:  # notify_many skips a reminder already written for this follow-up time
        when = format_local(lead.next_follow_up_at, zones.get(lead.assigned_agent_id))
        messages.append(
            Message(
                "follow_up_due",
                _key(lead),
                f"Follow up soon: {lead.full_name} ({when})",
                f"Your follow-up with {lead.full_name} is due at {when}.",
                user_id=lead.assigned_agent_id,
                related_type=Lead.__tablename__,
                related_id=lead.id,
                link=f"/leadview/show/{lead.id}",
            )
        )
    missed = list(
        db.session.scalars(
            select(Lead).where(
                *open_assigned,
                Lead.next_follow_up_at < now,
                Lead.next_follow_up_at >= now - OVERDUE_LOOKBACK,
                ~exists(
                    select(Task.id).where(
                        Task.lead_id == Lead.id, Task.due_at == Lead.next_follow_up_at
                    )
                ),
            ),
            execution_options=UNSCOPED,
        )
    )
    # A task is in its assignee's branch (as create_task puts it): one look-up for all agents.
    branches = dict(
        db.session.execute(
            select(StaffProfile.user_id, StaffProfile.branch_id).where(
                StaffProfile.user_id.in_({lead.assigned_agent_id for lead in missed})
            ),
            execution_options=UNSCOPED,
        ).all()
    )
    tasks = [
        Task(
            title=clean_text(FOLLOW_UP_TITLE.format(name=lead.full_name)[:200], "title", 200, True),
            description="The follow-up time set on the lead has passed.",
            assignee_id=lead.assigned_agent_id,
            branch_id=branches[lead.assigned_agent_id],
            due_at=lead.next_follow_up_at,
            priority="high",
            status="open",
            lead_id=lead.id,
            lead=lead,
        )
        for lead in missed
        if lead.assigned_agent_id in branches
    ]
    if tasks:
        db.session.add_all(tasks)
        db.session.flush()
        zones = zones_of_users(task.assignee_id for task in tasks)
        messages.extend(assignment_message(task, zones.get(task.assignee_id)) for task in tasks)
    notify_many(messages)
    db.session.commit()
    return {"reminded": len(soon), "tasks_created": len(tasks)}
