"""The support desk's rules: opening a case, its SLA, who works it and how its status moves.

    new --> open <--> waiting
             |  \\       |
             |   +--> resolved --> closed
             +<--------- (reopen)

Every change is one unit of work committed by the caller (screen, API, command or job); the
audit log records each change through the ORM hook, and each refusal at the boundary. Staff
replies go out through the outbox (``app.comms.services.notify``); e-mail from clients comes in
through ``app.support.inbound``; chat transcripts through ``app.support.transcripts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, select

from app.clients.models import Client
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text, parse_choice, parse_id
from app.extensions import db
from app.security.roles import ROLES, SCOPE_ALL, WRITE, allowed
from app.security.scoping import UNSCOPED, Actor, current_actor
from app.support.models import (
    CASE_CHANNELS,
    CASE_STATUSES,
    OPEN_STATUSES,
    PRIORITIES,
    SupportCase,
    SupportMessage,
)

DEFAULT_SLA_HOURS = {"urgent": 4, "high": 8, "normal": 24, "low": 72}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("open",),
    "open": ("waiting", "resolved"),
    "waiting": ("open", "resolved"),
    "resolved": ("closed", "open"),  # back to open: the client says it is not solved
    "closed": (),
}
RESOURCE = "SupportCase"


# ---- the SLA ------------------------------------------------------------------------------


def sla_hours(priority: str) -> int:
    """Hours a case of this priority has to be resolved in (settings, with defaults)."""
    configured = current_app.config.get("CRM_SUPPORT_SLA_HOURS") or {}
    return int(configured.get(priority, DEFAULT_SLA_HOURS[priority]))


def sla_due(started_at: datetime, priority: str) -> datetime:
    return started_at + timedelta(hours=sla_hours(priority))


def is_breached(case: SupportCase, now: datetime | None = None) -> bool:
    return case.status in OPEN_STATUSES and case.sla_due_at < (now or utcnow())


def time_left_in_words(case: SupportCase, now: datetime | None = None) -> str:
    """``3 h 20 min left`` or ``overdue by 1 d 2 h``; empty once resolved or closed."""
    if case.status not in OPEN_STATUSES:
        return ""
    delta = case.sla_due_at - (now or utcnow())
    words = _duration(abs(delta))
    return f"{words} left" if delta.total_seconds() >= 0 else f"overdue by {words}"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _restart_sla(case: SupportCase, now: datetime) -> None:
    case.sla_started_at = now
    case.sla_due_at = sla_due(now, case.priority)
    case.breach_notified_at = None  # a new due time can be missed (and told) again


# ---- opening and editing ------------------------------------------------------------------


def _visible_client(client_id: Any) -> Client:
    """The client, if the actor may see them (row scoping), else a refusal naming the field."""
    client = db.session.scalar(select(Client).where(Client.id == parse_id(client_id, "client")))
    if client is None:
        raise FieldError("choose a client you look after.", "client")
    return client


@without_autoflush
def prepare_case(case: SupportCase, actor: Actor | None = None) -> SupportCase:
    """Check a case being opened or edited on a screen or the generic API: a client the actor
    sees, a channel, a subject, a priority (its SLA follows). Status and assignee change only
    through their own actions."""
    actor = actor if actor is not None else current_actor()
    now = utcnow()
    if case.id is None:
        client_id = case.client.id if case.client is not None else case.client_id
        if client_id is None:
            raise FieldError("is required.", "client")
        case.client = _visible_client(client_id)
        case.client_id = case.client.id
        case.status = "new"
        case.opened_at = now
        case.opened_by_id = actor.user_id if actor else None
        case.channel = parse_choice(case.channel or "email", "channel", CASE_CHANNELS)
    else:
        history = db.inspect(case).attrs
        if history.client_id.history.has_changes() or history.client.history.has_changes():
            raise ConflictError("a case stays with its client; open a new case instead.", "client")
        if case.status == "closed":
            raise ConflictError("a closed case cannot be changed.", "status")
    case.subject = clean_text(case.subject, "subject", 200, required=True)
    case.description = clean_text(case.description, "description", 10000)
    case.priority = parse_choice(case.priority or "normal", "priority", PRIORITIES)
    if case.id is None:
        case.sla_started_at = now
        case.sla_due_at = sla_due(now, case.priority)
    elif db.inspect(case).attrs.priority.history.has_changes():
        case.sla_due_at = sla_due(case.sla_started_at, case.priority)
        case.breach_notified_at = None
    return case


def open_case(
    client_id: Any,
    subject: Any,
    *,
    channel: Any = "email",
    priority: Any = "normal",
    description: Any = None,
    assignee_id: Any = None,
    actor: Actor | None = None,
) -> SupportCase:
    """A new case for a client the actor sees; optionally assigned at once."""
    actor = actor if actor is not None else current_actor()
    case = SupportCase(
        client_id=client_id,
        subject=subject,
        channel=channel,
        priority=priority,
        description=description,
    )
    prepare_case(case, actor)
    if assignee_id not in (None, ""):
        case.assignee_id = _assignable(assignee_id, case.client)
    db.session.add(case)
    db.session.flush()
    return case


def get_case(case_id: Any, lock: bool = False) -> SupportCase:
    """The case, if the actor may see it (404 otherwise)."""
    try:
        number = parse_id(case_id, "case")
    except FieldError:
        raise NotFound("no such support case.") from None
    query = select(SupportCase).where(SupportCase.id == number)
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=SupportCase)
    case = db.session.execute(query.execution_options(populate_existing=True)).scalar()
    if case is None:
        raise NotFound("no such support case.")
    return case


# ---- status -------------------------------------------------------------------------------


def transition_case(
    case_id: Any, to_status: Any, note: Any = None, actor: Actor | None = None
) -> SupportCase:
    """Move a case along its workflow; a move the workflow does not allow is refused (409) with
    the moves it does allow. Resolving stamps the time, closing too; reopening a resolved case
    restarts its SLA clock."""
    actor = actor if actor is not None else current_actor()
    to_status = parse_choice(to_status, "status", CASE_STATUSES)
    note = clean_text(note, "note", 2000)
    case = get_case(case_id, lock=True)
    _move(case, to_status, utcnow())
    if note:
        _note(case, note, actor)
    db.session.flush()
    return case


def _move(case: SupportCase, to_status: str, now: datetime) -> None:
    allowed_moves = TRANSITIONS[case.status]
    if to_status not in allowed_moves:
        onward = ", ".join(allowed_moves) if allowed_moves else "nowhere (it is final)"
        raise ConflictError(
            f"case #{case.id} is {case.status} and cannot move to {to_status}; "
            f"from {case.status} it can go to: {onward}.",
            "status",
        )
    if case.status == "resolved" and to_status == "open":
        case.resolved_at = None
        _restart_sla(case, now)
    if to_status == "resolved":
        case.resolved_at = now
    if to_status == "closed":
        case.closed_at = now
    case.status = to_status


def _note(case: SupportCase, text: str, actor: Actor | None) -> None:
    db.session.add(
        SupportMessage(
            case=case,
            direction="outbound",
            channel="note",
            author_id=actor.user_id if actor else None,
            sender=(actor.username if actor else None) or "system",
            body=text,
            occurred_at=utcnow(),
        )
    )


# ---- who works it -------------------------------------------------------------------------


def _assignable(user_id: Any, client: Client) -> int:
    """The id of an active member of staff who may work support cases for this client's branch
    (a role that writes cases; of the client's branch unless their role sees every branch)."""
    from app.org.models import StaffProfile

    user_id = parse_id(user_id, "assignee")
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise FieldError("choose an active member of staff.", "assignee")
    roles = [role.name for role in user.roles if role.name in ROLES]
    if not any(allowed(role, RESOURCE, WRITE) for role in roles):
        raise FieldError(f"{user.username} does not work support cases.", "assignee")
    if not any(ROLES[role].scope == SCOPE_ALL for role in roles):
        branch_id = db.session.scalar(
            select(StaffProfile.branch_id).where(StaffProfile.user_id == user_id),
            execution_options=UNSCOPED,
        )
        if branch_id != client.branch_id:
            raise FieldError(f"{user.username} works for another branch.", "assignee")
    return user_id


def assign_case(case_id: Any, assignee_id: Any, actor: Actor | None = None) -> SupportCase:
    """Give the case to a colleague (in-app and e-mail notice to them)."""
    from app.comms.services import notify

    actor = actor if actor is not None else current_actor()
    case = get_case(case_id, lock=True)
    if case.status == "closed":
        raise ConflictError("a closed case cannot be reassigned.", "status")
    user_id = _assignable(assignee_id, case.client)
    if case.assignee_id == user_id:
        return case
    case.assignee_id = user_id
    if actor is None or actor.user_id != user_id:
        notify(
            "support_assigned",
            f"support-assigned:{case.id}:{user_id}:{int(utcnow().timestamp())}",
            f"Support case assigned: #{case.id} {case.subject}",
            f"Case #{case.id} ({case.priority}) for {case.client.name} is yours; "
            f"due {_due_in_branch_zone(case)}.",
            user_id=user_id,
            related=case,
            link=f"/supportcaseview/show/{case.id}",
        )
    db.session.flush()
    return case


def take_case(case_id: Any, actor: Actor | None = None) -> SupportCase:
    """The actor takes the case: assigned to them, and a new case is opened."""
    actor = actor if actor is not None else current_actor()
    if actor is None or actor.user_id is None:
        raise FieldError("sign in to take a case.", "assignee")
    case = assign_case(case_id, actor.user_id, actor)
    if case.status == "new":
        _move(case, "open", utcnow())
    db.session.flush()
    return case


def _due_in_branch_zone(case: SupportCase) -> str:
    from app.core.localtime import format_local, zone_of_client

    return format_local(case.sla_due_at, zone_of_client(case.client_id))


# ---- replies ------------------------------------------------------------------------------


def reply_to_case(
    case_id: Any, body: Any, then_status: Any = None, actor: Actor | None = None
) -> SupportMessage:
    """A staff reply to the client, e-mailed through the outbox with the case's reference in
    the subject and a Message-ID the client's answer will quote. The first reply is the first
    response; a new case opens; ``then_status`` (e.g. ``waiting``) moves it afterwards."""
    from app.comms.channels import message_id_for
    from app.comms.services import notify

    actor = actor if actor is not None else current_actor()
    body = clean_text(body, "body", 10000, required=True)
    then_status = parse_choice(then_status, "status", CASE_STATUSES, required=False)
    case = get_case(case_id, lock=True)
    if case.status == "closed":
        raise ConflictError(f"case #{case.id} is closed; open a new case to write again.")
    address = case.client.email
    if not address:
        raise FieldError(f"{case.client.name} has no e-mail address to reply to.", "client")
    now = utcnow()
    subject = f"{case.reference} {case.subject}"[:200]
    message = SupportMessage(
        case=case,
        direction="outbound",
        channel="email",
        author_id=actor.user_id if actor else None,
        sender=current_app.config.get("SUPPORT_INBOUND_ADDRESS") or None,
        recipient=address,
        subject=subject,
        body=body,
        occurred_at=now,
    )
    db.session.add(message)
    db.session.flush()
    (row,) = notify(
        "support_reply",
        f"support-reply:{case.id}:{message.id}",
        subject,
        body,
        address=address,
        related=case,
        channels=("email",),
    )
    db.session.flush()
    message.notification_id = row.id
    message.message_id = message_id_for(row.idempotency_key)
    if case.first_response_at is None:
        case.first_response_at = now
    if case.status == "new":
        _move(case, "open", now)
    if then_status and then_status != case.status:
        _move(case, then_status, now)
    db.session.flush()
    return message


def conversation(case_id: Any) -> list[SupportMessage]:
    """The case's messages, oldest first (row-scoped through the case)."""
    case = get_case(case_id)
    return list(
        db.session.scalars(
            select(SupportMessage)
            .where(SupportMessage.case_id == case.id)
            .order_by(SupportMessage.occurred_at, SupportMessage.id)
        )
    )


# ---- the queue ----------------------------------------------------------------------------

SORTS = {"due": "sla_due_at", "-due": "sla_due_at desc", "opened": "opened_at"}


@dataclass(frozen=True)
class QueueFilters:
    statuses: tuple[str, ...] = OPEN_STATUSES
    priority: str | None = None
    assignee: int | str | None = None
    """A user id, ``"none"`` (unassigned) or None (anyone)."""
    breached: bool | None = None
    sort: str = "due"

    def query_args(self) -> dict[str, str]:
        args = {"status": ",".join(self.statuses), "sort": self.sort}
        if self.priority:
            args["priority"] = self.priority
        if self.assignee is not None:
            args["assignee"] = str(self.assignee)
        if self.breached is not None:
            args["breached"] = "yes" if self.breached else "no"
        return args


def parse_queue_filters(args: Any, actor: Actor | None = None) -> QueueFilters:
    """The queue's filters from query arguments; a value it does not know is refused (4xx)."""
    status_text = (args.get("status") or "").strip()
    if status_text in ("", "open_statuses"):
        statuses = OPEN_STATUSES
    elif status_text == "all":
        statuses = CASE_STATUSES
    else:
        statuses = tuple(
            parse_choice(part.strip(), "status", CASE_STATUSES) for part in status_text.split(",")
        )
    priority = parse_choice(args.get("priority") or None, "priority", PRIORITIES, required=False)
    assignee_text = (args.get("assignee") or "").strip()
    if assignee_text in ("", "any"):
        assignee: int | str | None = None
    elif assignee_text == "none":
        assignee = "none"
    elif assignee_text == "me":
        actor = actor if actor is not None else current_actor()
        assignee = actor.user_id if actor and actor.user_id else "none"
    else:
        assignee = parse_id(assignee_text, "assignee")
    breached_text = (args.get("breached") or "").strip().lower()
    breached = {"": None, "any": None, "yes": True, "true": True, "1": True}.get(breached_text)
    if breached is None and breached_text in ("no", "false", "0"):
        breached = False
    elif breached is None and breached_text not in ("", "any"):
        raise FieldError("must be yes, no or any.", "breached")
    sort = args.get("sort") or "due"
    if sort not in SORTS:
        raise FieldError(f"must be one of: {', '.join(SORTS)}.", "sort")
    return QueueFilters(statuses, priority, assignee, breached, sort)


def queue_query(filters: QueueFilters, now: datetime | None = None) -> Select:
    """The cases the filters ask for, in SQL (row scoping applies), sorted by due time."""
    now = now or utcnow()
    query = select(SupportCase).where(SupportCase.status.in_(filters.statuses))
    if filters.priority:
        query = query.where(SupportCase.priority == filters.priority)
    if filters.assignee == "none":
        query = query.where(SupportCase.assignee_id.is_(None))
    elif filters.assignee is not None:
        query = query.where(SupportCase.assignee_id == filters.assignee)
    if filters.breached is True:
        query = query.where(SupportCase.status.in_(OPEN_STATUSES), SupportCase.sla_due_at < now)
    elif filters.breached is False:
        query = query.where(
            ~(SupportCase.status.in_(OPEN_STATUSES) & (SupportCase.sla_due_at < now))
        )
    if filters.sort == "-due":
        query = query.order_by(SupportCase.sla_due_at.desc(), SupportCase.id.desc())
    elif filters.sort == "opened":
        query = query.order_by(SupportCase.opened_at, SupportCase.id)
    else:
        query = query.order_by(SupportCase.sla_due_at, SupportCase.id)
    return query


def queue_cases(filters: QueueFilters, limit: int = 200) -> list[SupportCase]:
    from sqlalchemy.orm import selectinload

    query = queue_query(filters).options(
        selectinload(SupportCase.client).selectinload(Client.branch),
        selectinload(SupportCase.assignee),
    )
    return list(db.session.scalars(query.limit(limit)))


def case_json(case: SupportCase, now: datetime | None = None) -> dict[str, Any]:
    """A case as the API answers it."""
    now = now or utcnow()

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": case.id,
        "reference": case.reference,
        "client_id": case.client_id,
        "channel": case.channel,
        "subject": case.subject,
        "priority": case.priority,
        "status": case.status,
        "assignee_id": case.assignee_id,
        "opened_at": iso(case.opened_at),
        "sla_due_at": iso(case.sla_due_at),
        "first_response_at": iso(case.first_response_at),
        "resolved_at": iso(case.resolved_at),
        "closed_at": iso(case.closed_at),
        "breached": is_breached(case, now),
        "time_left": time_left_in_words(case, now),
        "allowed_moves": list(TRANSITIONS[case.status]),
    }


def message_json(message: SupportMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "case_id": message.case_id,
        "direction": message.direction,
        "channel": message.channel,
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": message.subject,
        "body": message.body,
        "occurred_at": message.occurred_at.isoformat(),
        "transcript_id": message.transcript_id,
    }
