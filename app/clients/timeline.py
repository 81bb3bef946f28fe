"""A client's timeline: everything that happened with the client, newest first, from every desk.

A *source* is a function ``(client_id, before, limit) -> list[TimelineEvent]`` returning at most
``limit`` of its newest events strictly older than ``before`` (None: no bound), with ONE query
ordered and limited in the database. The page merges the sources' lists, so a page costs one
query per source whatever the client's history. Sources run unscoped: the page checks first that
the actor may see the client, and everything listed belongs to that client.

The clients desk registers interactions, messages, documents, tasks, risk assessments and the
client record's own changes here; later desks (KYC, loans, transactions) call
``register_timeline_source`` from their own module.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import select

from app.audit.models import AuditLog
from app.clients.models import Client, RiskAssessment
from app.core.errors import NotFound
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


TimelineSource = Callable[[int, datetime | None, int], list[TimelineEvent]]
TIMELINE_SOURCES: dict[str, tuple[str, TimelineSource]] = {}
"""kind -> (label shown in the filter, source)"""


def register_timeline_source(kind: str, label: str) -> Callable[[TimelineSource], TimelineSource]:
    """Add a source of events to every client's timeline; used as a decorator."""

    def register(func: TimelineSource) -> TimelineSource:
        TIMELINE_SOURCES[kind] = (label, func)
        return func

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
    streams = [
        source(client.id, before, limit)
        for kind, (_, source) in TIMELINE_SOURCES.items()
        if kinds is None or kind in kinds
    ]
    merged = heapq.merge(*streams, key=lambda event: event.at, reverse=True)
    return client, list(islice(merged, limit))


def _bounded(query, column, before: datetime | None, limit: int):
    if before is not None:
        query = query.where(column < before)
    return query.order_by(column.desc()).limit(limit)


def _rows(query):
    return db.session.execute(query, execution_options=UNSCOPED).all()


# ---- the sources of the desks that exist so far ---------------------------------------------


@register_timeline_source("interaction", "Interactions")
def interaction_events(client_id: int, before: datetime | None, limit: int):
    from flask_appbuilder.security.sqla.models import User

    from app.leads.models import Interaction

    query = (
        select(Interaction.id, Interaction.kind, Interaction.occurred_at, Interaction.outcome)
        .add_columns(Interaction.body, User.username)
        .join(User, User.id == Interaction.author_id)
        .where(Interaction.client_id == client_id)
    )
    return [
        TimelineEvent(
            at=occurred_at,
            kind="interaction",
            title=f"{kind.capitalize()}" + (f": {outcome}" if outcome else ""),
            detail=(body or "")[:300] or None,
            url=f"/interactionview/show/{interaction_id}",
            who=username,
        )
        for interaction_id, kind, occurred_at, outcome, body, username in _rows(
            _bounded(query, Interaction.occurred_at, before, limit)
        )
    ]


@register_timeline_source("message", "Messages")
def message_events(client_id: int, before: datetime | None, limit: int):
    from app.comms.models import Notification

    query = select(
        Notification.id,
        Notification.channel,
        Notification.subject,
        Notification.status,
        Notification.created_at,
    ).where(Notification.recipient_client_id == client_id)
    return [
        TimelineEvent(
            at=created_at,
            kind="message",
            title=f"{channel} to the client: {subject}",
            detail=f"status: {status}",
        )
        for _, channel, subject, status, created_at in _rows(
            _bounded(query, Notification.created_at, before, limit)
        )
    ]


@register_timeline_source("document", "Documents")
def document_events(client_id: int, before: datetime | None, limit: int):
    from flask_appbuilder.security.sqla.models import User

    from app.documents.models import Document

    query = (
        select(Document.id, Document.doc_type, Document.version, Document.original_name)
        .add_columns(Document.uploaded_at, User.username)
        .join(User, User.id == Document.uploaded_by_id)
        .where(Document.client_id == client_id)
    )
    return [
        TimelineEvent(
            at=uploaded_at,
            kind="document",
            title=f"Document uploaded: {doc_type.replace('_', ' ')} v{version}",
            detail=name,
            url=f"/documentview/show/{document_id}",
            who=username,
        )
        for document_id, doc_type, version, name, uploaded_at, username in _rows(
            _bounded(query, Document.uploaded_at, before, limit)
        )
    ]


@register_timeline_source("task", "Tasks")
def task_events(client_id: int, before: datetime | None, limit: int):
    from app.tasks.models import Task

    query = select(Task.id, Task.title, Task.status, Task.due_at, Task.created_at).where(
        Task.client_id == client_id
    )
    return [
        TimelineEvent(
            at=created_at,
            kind="task",
            title=f"Task: {title}",
            detail=f"{status}, due {due_at:%Y-%m-%d %H:%M} UTC",
            url=f"/taskview/show/{task_id}",
        )
        for task_id, title, status, due_at, created_at in _rows(
            _bounded(query, Task.created_at, before, limit)
        )
    ]


@register_timeline_source("risk", "Risk profile")
def risk_events(client_id: int, before: datetime | None, limit: int):
    query = select(RiskAssessment.profile, RiskAssessment.score, RiskAssessment.assessed_at).where(
        RiskAssessment.client_id == client_id
    )
    return [
        TimelineEvent(
            at=assessed_at,
            kind="risk",
            title=f"Risk questionnaire: {profile}",
            detail=f"score {score}",
        )
        for profile, score, assessed_at in _rows(
            _bounded(query, RiskAssessment.assessed_at, before, limit)
        )
    ]


# Changes of these fields are shown with their values; others are only named.
SHOWN_CHANGES = (
    "status",
    "kyc_status",
    "segment",
    "risk_profile",
    "client_type",
    "preferred_channel",
)


@register_timeline_source("record", "Record changes")
def record_events(client_id: int, before: datetime | None, limit: int):
    query = select(
        AuditLog.action, AuditLog.changes, AuditLog.detail, AuditLog.actor_name
    ).add_columns(AuditLog.occurred_at)
    query = query.where(
        AuditLog.record_type == "client",
        AuditLog.record_id == str(client_id),
        AuditLog.action.in_(("create", "update")),
    )
    events = []
    for action, changes, detail, actor_name, occurred_at in _rows(
        _bounded(query, AuditLog.occurred_at, before, limit)
    ):
        if action == "create":
            title, text = "Client created", detail
        else:
            fields = json.loads(changes or "{}")
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
        events.append(
            TimelineEvent(at=occurred_at, kind="record", title=title, detail=text, who=actor_name)
        )
    return events
