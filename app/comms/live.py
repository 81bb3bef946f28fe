"""Live notifications: the bell's count and a toast change on an open page without a reload.

When a transaction that wrote in-app notifications commits, each recipient's Redis channel
(``fincrm:notifications:<user id>``) gets one small message: how many arrived, the newest's
subject and link. Nothing is published for a transaction that rolls back, and nothing is
published before the commit, so a page never shows a notification the database does not hold.

A signed-in page listens with Server-Sent Events (``GET /notifications/stream``): the web
process subscribes to the user's channel, sends the current state (unread count, newest unread
notification) at once and again on every message, and ends the stream after
``STREAM_SECONDS``; the browser's EventSource reconnects, and the state sent on connecting
covers anything published in between. Pub/sub reaches every subscriber, so every tab in every
web process hears it. A stream holds a thread while open: production serves with gunicorn's
threads (``--threads``), so open pages do not hold up other requests.

Without Redis (the embedded mode) the page asks ``GET /notifications/latest`` every
``POLL_SECONDS`` instead: one indexed statement.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.comms.models import Notification
from app.extensions import db
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "fincrm:notifications:"
STREAM_SECONDS = 25
"""How long one stream stays open before the browser reconnects."""
HEARTBEAT_SECONDS = 10
"""A comment line this often keeps proxies from closing a quiet stream."""
POLL_SECONDS = 5
"""How often a page without a stream (no Redis) asks for the state."""
PENDING_KEY = "crm_live_notifications"
EXTENSION_KEY = "crm_live_redis"


def channel_of(user_id: int) -> str:
    return f"{CHANNEL_PREFIX}{user_id}"


def note_written(session: Session, user_id: int | None, subject: str, link: str | None) -> None:
    """Record, in the transaction, that ``user_id`` has a new in-app notification."""
    if user_id is None:
        return
    pending: dict[int, dict[str, Any]] = session.info.setdefault(PENDING_KEY, {})
    entry = pending.setdefault(user_id, {"new": 0})
    entry.update(new=entry["new"] + 1, title=subject, link=link)


def redis_client() -> Any:
    """The app's Redis client for live updates (one connection pool per app), or None."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    client = current_app.extensions.get(EXTENSION_KEY)
    if client is None:
        from redis import Redis

        client = current_app.extensions.setdefault(
            EXTENSION_KEY, Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        )
    return client


def _publish(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    try:
        client = redis_client()
        if client is None:
            return  # embedded mode: open pages poll
        pipe = client.pipeline(transaction=False)
        for user_id, entry in pending.items():
            pipe.publish(channel_of(user_id), json.dumps(entry))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001  (Redis down: pages catch up on their next state)
        log.warning("live notifications: could not publish to Redis (%s)", type(exc).__name__)


def _forget(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


_installed = False


def install_live_hooks() -> None:
    global _installed
    if _installed:
        return
    event.listen(Session, "after_commit", _publish)
    event.listen(Session, "after_soft_rollback", lambda session, previous: _forget(session))
    _installed = True


def state_of(user_id: int) -> dict[str, Any]:
    """The unread count and the newest unread notification of ``user_id``, in one statement."""
    row = db.session.execute(
        select(
            Notification.id,
            Notification.subject,
            Notification.link,
            func.count().over().label("unread"),
        )
        .where(
            Notification.recipient_user_id == user_id,
            Notification.channel == "in_app",
            Notification.read_at.is_(None),
        )
        .order_by(Notification.id.desc())
        .limit(1),
        execution_options=UNSCOPED,
    ).first()
    if row is None:
        return {"unread": 0, "id": None, "title": None, "link": None}
    return {"unread": row.unread, "id": row.id, "title": row.subject, "link": row.link}


def _event(state: dict[str, Any]) -> str:
    return f"data: {json.dumps(state)}\n\n"


def stream_events(user_id: int, seconds: float | None = None) -> Iterator[str]:
    """The Server-Sent Events of one stream: the state now, then on every message for the
    user, heartbeats in between, until ``seconds`` have passed. Subscribed before the first
    state is read, so nothing published in between is lost."""
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_of(user_id))
    try:
        yield f"retry: 2000\n{_event(state_of(user_id))}"
        db.session.rollback()  # hand the connection back while the stream waits
        deadline = time.monotonic() + (seconds or STREAM_SECONDS)
        while (left := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=min(HEARTBEAT_SECONDS, left))
            if message is None:
                yield ": waiting\n\n"
                continue
            yield _event(state_of(user_id))
            db.session.rollback()
    finally:
        pubsub.close()
