"""The rules of tasks. Screens and the API call these; only the reminder job commits.

``save_task`` is what a screen or the API runs before its commit: ``prepare_task`` cleans and
checks the task (text, choices, due time, who it may be assigned to, its branch), then the task
is flushed so it has an id, and the assignee is notified through the outbox when the task is new
or has a new assignee. The notification rows are in the session beside the task, so the caller's
one commit writes both, or neither.

``send_task_reminders`` is the periodic job: a ``task_due`` notification shortly before a task
is due and a ``task_overdue`` one once it is late, each at most once per due time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, inspect, select
from sqlalchemy.orm import selectinload

from app.clients.models import Client
from app.comms.models import Notification
from app.comms.services import Message, already_notified, notify, notify_many
from app.core.errors import FieldError, PermissionDenied
from app.core.localtime import UTC_ZONE, format_local, zone_of_user, zones_of_users
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text
from app.extensions import db
from app.leads.models import Lead
from app.org.models import Branch, StaffProfile
from app.security.scoping import UNSCOPED, Actor, current_actor
from app.tasks.models import OPEN_TASK_STATUSES, TASK_PRIORITIES, TASK_STATUSES, Task

TASK_TEXT_LIMITS = {"title": (200, True), "description": (10_000, False)}
DEFAULT_REMINDER_MINUTES = 60


def _check_choice(value: Any, choices: tuple[str, ...], field: str) -> str:
    if value in (None, ""):
        raise FieldError("is required.", field)
    if value not in choices:
        raise FieldError(f"must be one of: {', '.join(choices)}.", field)
    return value


def _as_utc(value: Any, field: str) -> datetime:
    if value is None or value == "":
        raise FieldError("is required.", field)
    if not isinstance(value, datetime):
        raise FieldError("must be a date and time.", field)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(task: Task) -> dict[str, int | None]:
    """The assignee, lead and client as committed in the database (all None for a new task).
    Read from the table, so they are right whether the screen set the relationship or the API
    the id."""
    stored: dict[str, int | None] = {"assignee": None, "lead": None, "client": None}
    if inspect(task).persistent and task.id is not None:
        row = db.session.execute(
            select(Task.assignee_id, Task.lead_id, Task.client_id).where(Task.id == task.id),
            execution_options=UNSCOPED,
        ).one_or_none()
        if row is not None:
            stored = {"assignee": row.assignee_id, "lead": row.lead_id, "client": row.client_id}
    return stored


def _chosen_id(task: Task, relation: str) -> int | None:
    """The id picked for a relation: screens set the relationship (a blank drop-down sets None),
    the API sets the ``<relation>_id`` column."""
    if inspect(task).attrs[relation].history.has_changes():
        related = getattr(task, relation)
        return related.id if related is not None else None
    return getattr(task, f"{relation}_id")


@without_autoflush
def prepare_task(task: Task, actor: Actor | None = None) -> Task:
    """Clean and check ``task`` in place before it is added or updated; raise DomainError."""
    return _prepare(task, actor if actor is not None else current_actor(), _stored(task))


def _prepare(task: Task, actor: Actor | None, stored: dict[str, int | None]) -> Task:
    for field, (limit, required) in TASK_TEXT_LIMITS.items():
        setattr(task, field, clean_text(getattr(task, field), field, limit, required))
    task.priority = _check_choice(task.priority or "normal", TASK_PRIORITIES, "priority")
    task.status = _check_choice(task.status or "open", TASK_STATUSES, "status")
    task.due_at = _as_utc(task.due_at, "due_at")
    if task.status == "done":
        task.completed_at = task.completed_at or utcnow()
    else:
        task.completed_at = None
    _assign(task, actor, stored["assignee"])
    _relate(task, stored)
    created_by_id = _chosen_id(task, "created_by")
    if created_by_id is None and not inspect(task).persistent:
        created_by_id = actor.user_id if actor is not None else None
    task.created_by_id = created_by_id
    task.created_by = db.session.get(User, created_by_id) if created_by_id else None
    return task


def _staff_branch(user_id: int) -> int | None:
    return db.session.execute(
        select(StaffProfile.branch_id).where(StaffProfile.user_id == user_id),
        execution_options=UNSCOPED,
    ).scalar_one_or_none()


def _assign(task: Task, actor: Actor | None, stored_assignee_id: int | None) -> None:
    """A task goes to a member of staff: anyone for an admin (and jobs), someone in their branch
    for a manager, themselves for everyone else. Its branch is the assignee's."""
    # Screens set the relationship, the API the id: work on the id, then set both.
    task.assignee_id = _chosen_id(task, "assignee")
    if task.assignee_id is None and actor is not None and actor.user_id is not None:
        task.assignee_id = actor.user_id  # left blank: "me"
    if task.assignee_id is None:
        raise FieldError("is required.", "assignee")
    branch_id = _staff_branch(task.assignee_id)
    if branch_id is None:
        raise FieldError("the assignee is not a member of staff.", "assignee")
    assigning = stored_assignee_id is None or stored_assignee_id != task.assignee_id
    if assigning and actor is not None and actor.user_id is not None:
        if "Admin" in actor.roles:
            pass
        elif "Manager" in actor.roles:
            if branch_id != actor.branch_id:
                raise PermissionDenied("a manager assigns tasks within their branch.", "assignee")
        elif task.assignee_id != actor.user_id:
            raise PermissionDenied("only a manager can assign a task to someone else.", "assignee")
    task.branch_id = branch_id
    task.branch = db.session.get(Branch, branch_id)
    task.assignee = db.session.get(User, task.assignee_id)


def _relate(task: Task, stored: dict[str, int | None]) -> None:
    """A lead or client newly linked to a task must be one the actor can see (scoped look-ups);
    one linked before is kept as it is."""
    for relation, model, label in (("lead", Lead, "lead"), ("client", Client, "client")):
        related_id = _chosen_id(task, relation)
        if related_id is None:
            setattr(task, f"{relation}_id", None)
            setattr(task, relation, None)
            continue
        if related_id == stored[relation]:
            setattr(task, f"{relation}_id", related_id)
            continue
        found = db.session.scalar(select(model).where(model.id == related_id))
        if found is None:
            raise FieldError(f"no such {label} (or it is not one of yours).", relation)
        setattr(task, f"{relation}_id", found.id)
        setattr(task, relation, found)


def save_task(task: Task, actor: Actor | None = None) -> Task:
    """Check ``task``, add and flush it, and notify its assignee when it is new or reassigned.
    Never commits: the caller's commit writes the task and its notifications together."""
    actor = actor if actor is not None else current_actor()
    with db.session.no_autoflush:
        stored = _stored(task)
        _prepare(task, actor, stored)
    db.session.add(task)
    try:
        db.session.flush()
        if stored["assignee"] != task.assignee_id:
            notify_assigned(task)
            db.session.flush()  # any refusal of the outbox rows surfaces here, not at commit
    except Exception:
        # The flush wrote the task (and its audit row, holding the audit chain's lock): undo it
        # before anyone records the refusal, so nothing is half-written and nothing waits.
        db.session.rollback()
        raise
    return task


def assignment_message(task: Task, zone: ZoneInfo | None = None) -> Message:
    """The message telling a task's assignee about it (a flushed task: it has its id), its due
    time in the assignee's branch's zone (``zone``, when the caller knows it)."""
    due = format_local(task.due_at, zone or zone_of_user(task.assignee_id))
    about = _about(task)
    body = f"{task.title}\nDue: {due}\nPriority: {task.priority}{about}"
    if task.description:
        body += f"\n\n{task.description}"
    return Message(
        kind="task_assigned",
        key=f"task-assigned:{task.id}:{task.assignee_id}",
        subject=f"New task: {task.title} (due {due})",
        body=body,
        user_id=task.assignee_id,
        related_type=Task.__tablename__,
        related_id=task.id,
        link=f"/taskview/show/{task.id}",
    )


def notify_assigned(task: Task) -> list[Notification]:
    message = assignment_message(task)
    return notify(
        kind=message.kind,
        key=message.key,
        subject=message.subject,
        body=message.body,
        user_id=message.user_id,
        related=task,
        link=message.link,
    )


def _about(task: Task) -> str:
    if task.lead is not None:
        return f"\nLead: {task.lead.full_name}"
    if task.client is not None:
        return f"\nClient: {task.client.name}"
    return ""


def create_task(actor: Actor | None = None, **fields: Any) -> Task:
    """Make, check, add and notify (the caller commits)."""
    return save_task(Task(**fields), actor)


# ---- lists --------------------------------------------------------------------------------


def my_tasks_query(user_id: int, include_closed: bool = False) -> Select:
    query = select(Task).where(Task.assignee_id == user_id)
    if not include_closed:
        query = query.where(Task.status.in_(OPEN_TASK_STATUSES))
    return query.order_by(Task.due_at)


def overdue_query(now: datetime | None = None) -> Select:
    """Open or in-progress tasks past their due time (row scoping narrows it per user)."""
    now = now or utcnow()
    return (
        select(Task)
        .where(Task.status.in_(OPEN_TASK_STATUSES), Task.due_at < now)
        .order_by(Task.due_at)
    )


# ---- reminders ----------------------------------------------------------------------------


def _due_key(task: Task) -> str:
    return f"task-due:{task.id}:{task.due_at.isoformat()}"


def _overdue_key(task: Task) -> str:
    return f"task-overdue:{task.id}:{task.due_at.isoformat()}"


OVERDUE_LOOKBACK = timedelta(days=30)


def send_task_reminders(now: datetime | None = None) -> dict[str, int]:
    """Notify assignees of tasks due within ``CRM_TASK_REMINDER_MINUTES`` (``task_due``) and of
    tasks past due (``task_overdue``), once per task and due time; commits (a job's unit of
    work). Returns how many tasks were notified of each kind."""
    now = _as_utc(now or utcnow(), "now")
    minutes = int(current_app.config.get("CRM_TASK_REMINDER_MINUTES", DEFAULT_REMINDER_MINUTES))
    candidates = select(Task).options(
        selectinload(Task.assignee), selectinload(Task.lead), selectinload(Task.client)
    )
    due_soon = list(
        db.session.scalars(
            candidates.where(
                Task.status.in_(OPEN_TASK_STATUSES),
                Task.due_at >= now,
                Task.due_at <= now + timedelta(minutes=minutes),
            ).order_by(Task.due_at),
            execution_options=UNSCOPED,
        )
    )
    overdue = list(
        db.session.scalars(
            candidates.where(
                Task.status.in_(OPEN_TASK_STATUSES),
                Task.due_at < now,
                # Bounded: older overdue tasks were notified by earlier sweeps; no full-table scan.
                Task.due_at >= now - OVERDUE_LOOKBACK,
            ).order_by(Task.due_at),
            execution_options=UNSCOPED,
        )
    )
    done = already_notified([_due_key(t) for t in due_soon] + [_overdue_key(t) for t in overdue])
    report = {"task_due": 0, "task_overdue": 0}
    batches = (
        (due_soon, "task_due", _due_key, "Due soon: {title} ({due})", "Due"),
        (overdue, "task_overdue", _overdue_key, "Overdue: {title} (was due {due})", "Was due"),
    )
    messages = []
    zones = zones_of_users(t.assignee_id for t in [*due_soon, *overdue])  # one statement
    for tasks, kind, key_of, subject, due_label in batches:
        for task in tasks:
            key = key_of(task)
            if key in done:
                continue
            done.add(key)
            due = format_local(task.due_at, zones.get(task.assignee_id, UTC_ZONE))
            messages.append(
                Message(
                    kind=kind,
                    key=key,
                    subject=subject.format(title=task.title, due=due),
                    body=f"{task.title}\n{due_label}: {due}\nPriority: {task.priority}"
                    f"{_about(task)}",
                    user_id=task.assignee_id,
                    related_type=Task.__tablename__,
                    related_id=task.id,
                    link=f"/taskview/show/{task.id}",
                )
            )
            report[kind] += 1
    notify_many(messages)  # one bulk insert, not a notify() per task
    db.session.commit()
    return report
