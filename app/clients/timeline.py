"""A client's timeline: everything that happened with the client, newest first, from every desk.

A *source* is one kind of event. It gives a function ``client_id -> Select`` choosing the
client's events of that kind, one row each, with the moment of each in a column labelled
``at``, and a function turning one such row into a ``TimelineEvent``. A page reads every source
at once, in ONE statement (``app.core.newest_first``): a UNION ALL of the sources' selects, each
ordered by time and limited in the database, the whole ordered by time and limited again. A
page therefore costs one statement however long the client's history and however many desks
register a source.

The events are read unscoped: the client is looked up first through the actor's row scope
(another agent's client is not found), and everything listed belongs to that client. (An agent
sees the messages sent to their client, although the outbox itself is scoped to its recipients.)

The clients desk registers interactions, messages, documents, tasks, risk assessments and the
client record's own changes here; later desks (KYC, loans, transactions) call
``register_timeline_source`` from their own module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from app.audit.models import AuditLog
from app.clients.models import Client, RiskAssessment
from app.core.errors import NotFound
from app.core.localtime import format_local
from app.core.newest_first import newest_first
from app.extensions import db
from app.security.scoping import UNSCOPED


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str
    title: str
    detail: str | None = None
    url: str | None = None
    who: str | None = None


@dataclass(frozen=True)
class TimelineSource:
    """One kind of event on every client's timeline."""

    label: str
    """Shown in the page's filter."""
    rows: Callable[[int], Select]
    """The client's events of this kind: a select with a column labelled ``at`` (when it
    happened), the other columns named as ``event`` reads them."""
    event: Callable[[Any], TimelineEvent]
    """One row (its columns as attributes) as the event shown."""


TIMELINE_SOURCES: dict[str, TimelineSource] = {}
"""kind -> source, in the order they were registered (which also orders simultaneous events)"""


def register_timeline_source(
    kind: str, label: str, event: Callable[[Any], TimelineEvent]
) -> Callable[[Callable[[int], Select]], Callable[[int], Select]]:
    """Add a kind of event to every client's timeline; decorates the function that selects the
    client's rows, ``event`` turns one row into what the page shows."""

    def register(rows: Callable[[int], Select]) -> Callable[[int], Select]:
        TIMELINE_SOURCES[kind] = TimelineSource(label, rows, event)
        return rows

    return register


def timeline_query(
    kinds: list[str], before: str | None, limit: str | None
) -> tuple[set[str] | None, datetime | None, int]:
    """The filters of a timeline request (screen or API) checked: FieldError naming the bad one."""
    from app.core.errors import FieldError

    unknown = set(kinds) - set(TIMELINE_SOURCES)
    if unknown:
        raise FieldError(
            f"unknown kind(s) {', '.join(sorted(unknown))}; known: {', '.join(TIMELINE_SOURCES)}.",
            "kind",
        )
    try:
        moment = datetime.fromisoformat(before) if before else None
    except ValueError as exc:
        raise FieldError("must be an ISO date and time.", "before") from exc
    try:
        count = int(limit) if limit not in (None, "") else 50
    except ValueError as exc:
        raise FieldError("must be a whole number.", "limit") from exc
    return set(kinds) or None, moment, count


def client_timeline(
    client_id: int,
    kinds: set[str] | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> tuple[Client, list[TimelineEvent]]:
    """The client (as the actor sees it: another agent's client is not found) and up to ``limit``
    of its newest events older than ``before``, of the given kinds (all when None)."""
    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None:
        raise NotFound("no such client.")
    limit = max(1, min(limit, 200))
    selects = {
        kind: source.rows(client.id)
        for kind, source in TIMELINE_SOURCES.items()
        if kinds is None or kind in kinds
    }
    rows = newest_first(selects, before, limit, execution_options=UNSCOPED)
    return client, [TIMELINE_SOURCES[kind].event(row) for kind, row in rows]


# ---- the sources of the desks that exist so far ---------------------------------------------


def _interaction_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="interaction",
        title=f"{row.kind.capitalize()}" + (f": {row.outcome}" if row.outcome else ""),
        detail=(row.body or "")[:300] or None,
        url=f"/interactionview/show/{row.id}",
        who=row.username,
    )


@register_timeline_source("interaction", "Interactions", _interaction_event)
def interaction_rows(client_id: int) -> Select:
    from flask_appbuilder.security.sqla.models import User

    from app.leads.models import Interaction

    return (
        select(
            Interaction.occurred_at.label("at"),
            Interaction.id,
            Interaction.kind,
            Interaction.outcome,
            Interaction.body,
            User.username,
        )
        .join(User, User.id == Interaction.author_id)
        .where(Interaction.client_id == client_id)
    )


def _message_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="message",
        title=f"{row.channel} to the client: {row.subject}",
        detail=f"status: {row.status}",
    )


@register_timeline_source("message", "Messages", _message_event)
def message_rows(client_id: int) -> Select:
    from app.comms.models import Notification

    return select(
        Notification.created_at.label("at"),
        Notification.channel,
        Notification.subject,
        Notification.status,
    ).where(Notification.recipient_client_id == client_id)


def _document_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="document",
        title=f"Document uploaded: {row.doc_type.replace('_', ' ')} v{row.version}",
        detail=row.original_name,
        url=f"/documentview/show/{row.id}",
        who=row.username,
    )


@register_timeline_source("document", "Documents", _document_event)
def document_rows(client_id: int) -> Select:
    from flask_appbuilder.security.sqla.models import User

    from app.documents.models import Document

    return (
        select(
            Document.uploaded_at.label("at"),
            Document.id,
            Document.doc_type,
            Document.version,
            Document.original_name,
            User.username,
        )
        .join(User, User.id == Document.uploaded_by_id)
        .where(Document.client_id == client_id)
    )


def _task_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="task",
        title=f"Task: {row.title}",
        detail=f"{row.status}, due {format_local(row.due_at)}",
        url=f"/taskview/show/{row.id}",
    )


@register_timeline_source("task", "Tasks", _task_event)
def task_rows(client_id: int) -> Select:
    from app.tasks.models import Task

    return select(Task.created_at.label("at"), Task.id, Task.title, Task.status, Task.due_at).where(
        Task.client_id == client_id
    )


def _risk_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="risk",
        title=f"Risk questionnaire: {row.profile}",
        detail=f"score {row.score}",
    )


@register_timeline_source("risk", "Risk profile", _risk_event)
def risk_rows(client_id: int) -> Select:
    return select(
        RiskAssessment.assessed_at.label("at"), RiskAssessment.profile, RiskAssessment.score
    ).where(RiskAssessment.client_id == client_id)


# Changes of these fields are shown with their values; others are only named.
SHOWN_CHANGES = (
    "status",
    "kyc_status",
    "segment",
    "risk_profile",
    "client_type",
    "preferred_channel",
)


def _record_event(row) -> TimelineEvent:
    if row.action == "create":
        title, text = "Client created", row.detail
    else:
        fields = json.loads(row.changes or "{}")
        shown = [
            f"{name.replace('_', ' ')}: {fields[name][0]} → {fields[name][1]}"
            for name in SHOWN_CHANGES
            if name in fields
        ]
        others = sorted(
            name.replace("_", " ")
            for name in fields
            if name not in SHOWN_CHANGES and name != "updated_at" and not name.endswith("_hash")
        )
        title = "Client updated"
        text = "; ".join(shown + ([f"changed: {', '.join(others)}"] if others else [])) or None
    return TimelineEvent(at=row.at, kind="record", title=title, detail=text, who=row.actor_name)


@register_timeline_source("record", "Record changes", _record_event)
def record_rows(client_id: int) -> Select:
    return select(
        AuditLog.occurred_at.label("at"),
        AuditLog.action,
        AuditLog.changes,
        AuditLog.detail,
        AuditLog.actor_name,
    ).where(
        AuditLog.record_type == "client",
        AuditLog.record_id == str(client_id),
        AuditLog.action.in_(("create", "update")),
    )
