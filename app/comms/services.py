"""Notifications: written to the outbox with the change that causes them, sent by the dispatcher.

``notify`` decides, from the recipient's preferences, which channels get a row; each row's
idempotency key is the event's key plus the channel, so the same event never notifies twice.
``dispatch_outbox`` claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never
share a row), sends each through its channel, and records the result in the message log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from app.comms.channels import ChannelError, channel_for
from app.comms.live import note_written
from app.comms.models import CHANNELS, MessageLog, Notification, NotificationPreference
from app.core.types import utcnow
from app.extensions import db
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = ("email", "in_app")
BACKOFF_SECONDS = (60, 300, 1800, 7200)


@dataclass(frozen=True)
class Attachment:
    """A file an e-mail carries, already stored through ``get_storage()``."""

    key: str
    name: str
    content_type: str


@dataclass(frozen=True)
class Preferences:
    email: bool = True
    sms: bool = False
    in_app: bool = True
    digest: str = "none"

    def allows(self, channel: str) -> bool:
        return bool(getattr(self, channel))


def preferences_for(user_id: int | None = None, client_id: int | None = None) -> Preferences:
    column = (
        NotificationPreference.user_id if user_id is not None else NotificationPreference.client_id
    )
    row = db.session.scalar(
        select(NotificationPreference).where(
            column == (user_id if user_id is not None else client_id)
        ),
        execution_options=UNSCOPED,
    )
    if row is None:
        return Preferences(in_app=user_id is not None)
    return Preferences(
        row.email_enabled, row.sms_enabled, row.in_app_enabled and user_id is not None, row.digest
    )


def _address(channel: str, user: User | None, client: Any) -> str | None:
    if channel == "email":
        return (user.email if user else client.email) or None
    if channel == "sms":
        return getattr(client, "phone", None) if client else _staff_phone(user)
    return None


def _staff_phone(user: User | None) -> str | None:
    from app.org.models import StaffProfile

    if user is None:
        return None
    return db.session.scalar(
        select(StaffProfile.phone).where(StaffProfile.user_id == user.id),
        execution_options=UNSCOPED,
    )


def client_channels(client: Any, prefs: Preferences, asked: tuple[str, ...]) -> tuple[str, ...]:
    """A client hears on ONE channel: their preferred one when it was asked for, is allowed and
    has an address; otherwise the first asked-for channel that is allowed and has one."""
    usable = [
        channel
        for channel in asked
        if channel != "in_app" and prefs.allows(channel) and _address(channel, None, client)
    ]
    if client.preferred_channel in usable:
        return (client.preferred_channel,)
    return tuple(usable[:1])


def notify(
    kind: str,
    key: str,
    subject: str,
    body: str,
    *,
    user_id: int | None = None,
    client_id: int | None = None,
    address: str | None = None,
    related: Any = None,
    link: str | None = None,
    channels: tuple[str, ...] = DEFAULT_CHANNELS,
    attachment: Attachment | None = None,
) -> list[Notification]:
    """Queue a notification in the caller's transaction; returns the rows added (none if this
    event was already notified). ``key`` names the event, e.g. ``task-assigned:42:7``.
    An ``attachment`` (a file already in storage) goes with the e-mail only, which is then sent
    on its own even to someone who takes a digest (a digest cannot carry files).

    The recipient is a member of staff (``user_id``), a client (``client_id``), or someone
    outside the CRM reached at ``address`` (a loan's borrower): an e-mail address for the
    ``email`` channel, a phone number for ``sms``."""
    from app.clients.models import Client

    if sum(r is not None for r in (user_id, client_id, address)) != 1:
        raise ValueError("notify one recipient: a user, a client or an address")
    if address is not None:
        return _notify_address(kind, key, subject, body, address, related, link, channels)
    user = db.session.get(User, user_id) if user_id is not None else None
    client = (
        db.session.scalar(select(Client).where(Client.id == client_id), execution_options=UNSCOPED)
        if client_id is not None
        else None
    )
    prefs = preferences_for(user_id, client_id)
    if client is not None:
        channels = client_channels(client, prefs, channels)
    keys = {f"{key}:{channel}": channel for channel in channels if channel in CHANNELS}
    existing = set(
        db.session.scalars(
            select(Notification.idempotency_key).where(Notification.idempotency_key.in_(keys)),
            execution_options=UNSCOPED,
        )
    )
    related_type = related.__tablename__ if related is not None else None
    related_id = str(related.id) if related is not None else None
    now = utcnow()
    added = []
    for row_key, channel in keys.items():
        if row_key in existing or not prefs.allows(channel):
            continue
        address = _address(channel, user, client)
        if channel != "in_app" and not address:
            continue
        if channel == "in_app":
            status, sent_at = "sent", now  # shown in the notification centre at once
        elif channel == "email" and prefs.digest != "none" and attachment is None:
            status, sent_at = "held", None  # goes out in the recipient's digest
        else:
            status, sent_at = "pending", None
        row = Notification(
            idempotency_key=row_key,
            channel=channel,
            kind=kind,
            recipient_user_id=user_id,
            recipient_client_id=client_id,
            address=address,
            subject=subject[:200],
            body=body,
            link=link,
            related_type=related_type,
            related_id=related_id,
            status=status,
            sent_at=sent_at,
            next_attempt_at=now,
        )
        if attachment is not None and channel == "email":
            row.attachment_key = attachment.key
            row.attachment_name = attachment.name
            row.attachment_type = attachment.content_type
        db.session.add(row)
        added.append(row)
        if channel == "in_app":
            note_written(db.session, user_id, row.subject, link)
    if any(row.status == "pending" for row in added):
        db.session.info["crm_outbox_has_new"] = True
    return added


def _notify_address(
    kind: str,
    key: str,
    subject: str,
    body: str,
    address: str,
    related: Any,
    link: str | None,
    channels: tuple[str, ...],
) -> list[Notification]:
    channel = "sms" if address.startswith("+") else "email"
    if channel not in channels:
        return []
    row_key = f"{key}:{channel}"
    if db.session.scalar(
        select(Notification.id).where(Notification.idempotency_key == row_key),
        execution_options=UNSCOPED,
    ):
        return []
    row = Notification(
        idempotency_key=row_key,
        channel=channel,
        kind=kind,
        address=address,
        subject=subject[:200],
        body=body,
        link=link,
        related_type=related.__tablename__ if related is not None else None,
        related_id=str(related.id) if related is not None else None,
        status="pending",
        next_attempt_at=utcnow(),
    )
    db.session.add(row)
    db.session.info["crm_outbox_has_new"] = True
    return [row]


def already_notified(event_keys: Iterable[str], batch: int = 500) -> set[str]:
    """Which of these events (``notify`` keys) already have an outbox row on any channel: one
    query a batch, so a sweep skips them without a query per event."""
    event_keys = list(event_keys)
    found: set[str] = set()
    for start in range(0, len(event_keys), batch):
        row_keys = {
            f"{key}:{channel}": key
            for key in event_keys[start : start + batch]
            for channel in CHANNELS
        }
        found.update(
            row_keys[row_key]
            for row_key in db.session.scalars(
                select(Notification.idempotency_key).where(
                    Notification.idempotency_key.in_(row_keys)
                ),
                execution_options=UNSCOPED,
            )
        )
    return found


@dataclass(frozen=True)
class Message:
    """One event for ``notify_many``: to a member of staff (``user_id``) or to someone outside
    the CRM at ``address``, with the same meaning as ``notify``'s arguments."""

    kind: str
    key: str
    subject: str
    body: str
    user_id: int | None = None
    address: str | None = None
    related_type: str | None = None
    related_id: int | str | None = None
    link: str | None = None
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    recipient_client_id: int | None = None
    """With ``address``: the client it reaches (their timeline and time zone)."""
    unsubscribe_url: str | None = None
    """A marketing message's signed unsubscribe link (body and List-Unsubscribe header)."""


def notify_many(messages: Iterable[Message], batch: int = 1000) -> list[Message]:
    """``notify`` for a whole sweep: the same rows (channels by the recipient's preferences, one
    idempotency key per event and channel, nothing for an event already in the outbox), read and
    written a batch at a time: recipients, preferences and existing keys in one query each per
    batch, and the new rows in one bulk insert. Returns the messages that added at least one row
    (the caller commits)."""
    messages = list(messages)
    added: list[Message] = []
    for start in range(0, len(messages), batch):
        added.extend(_notify_batch(messages[start : start + batch]))
    return added


def _notify_batch(messages: list[Message]) -> list[Message]:
    from app.org.models import StaffProfile

    user_ids = {m.user_id for m in messages if m.user_id is not None}
    if any(m.user_id is None and m.address is None for m in messages):
        raise ValueError("notify one recipient: a user or an address")
    emails = dict(
        db.session.execute(
            select(User.id, User.email).where(User.id.in_(user_ids)), execution_options=UNSCOPED
        ).all()
    )
    prefs = {
        row.user_id: Preferences(row.email_enabled, row.sms_enabled, row.in_app_enabled, row.digest)
        for row in db.session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id.in_(user_ids)),
            execution_options=UNSCOPED,
        )
    }
    wants_sms = {m.user_id for m in messages if m.user_id is not None and "sms" in m.channels}
    phones = (
        dict(
            db.session.execute(
                select(StaffProfile.user_id, StaffProfile.phone).where(
                    StaffProfile.user_id.in_(wants_sms)
                ),
                execution_options=UNSCOPED,
            ).all()
        )
        if wants_sms
        else {}
    )

    def rows_of(message: Message) -> list[tuple[str, str, str | None, str, str | None]]:
        """(row key, channel, address, status, sent) the message would write, before existing."""
        if message.address is not None:
            channel = "sms" if message.address.startswith("+") else "email"
            if channel not in message.channels:
                return []
            return [(f"{message.key}:{channel}", channel, message.address, "pending", None)]
        pref = prefs.get(message.user_id, Preferences())
        out = []
        for channel in dict.fromkeys(message.channels):
            if channel not in CHANNELS or not pref.allows(channel):
                continue
            if channel == "in_app":
                out.append((f"{message.key}:{channel}", channel, None, "sent", "now"))
                continue
            address = (
                emails.get(message.user_id) if channel == "email" else phones.get(message.user_id)
            )
            if not address:
                continue
            status = "held" if channel == "email" and pref.digest != "none" else "pending"
            out.append((f"{message.key}:{channel}", channel, address, status, None))
        return out

    planned = [(message, rows_of(message)) for message in messages]
    existing = set(
        db.session.scalars(
            select(Notification.idempotency_key).where(
                Notification.idempotency_key.in_([r[0] for _, rows in planned for r in rows])
            ),
            execution_options=UNSCOPED,
        )
    )
    now = utcnow()
    values: list[dict[str, Any]] = []
    added: list[Message] = []
    for message, rows in planned:
        fresh = [r for r in rows if r[0] not in existing]
        existing.update(r[0] for r in fresh)
        if not fresh:
            continue
        added.append(message)
        for row_key, channel, address, status, sent in fresh:
            values.append(
                {
                    "idempotency_key": row_key,
                    "channel": channel,
                    "kind": message.kind,
                    "recipient_user_id": message.user_id,
                    "recipient_client_id": message.recipient_client_id,
                    "address": address,
                    "unsubscribe_url": message.unsubscribe_url,
                    "subject": message.subject[:200],
                    "body": message.body,
                    "link": message.link,
                    "related_type": message.related_type,
                    "related_id": None if message.related_id is None else str(message.related_id),
                    "status": status,
                    "attempts": 0,
                    "sent_at": now if sent else None,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    for value in values:
        if value["channel"] == "in_app":
            note_written(db.session, value["recipient_user_id"], value["subject"], value["link"])
    if values:
        # The table's insert, not the ORM's: the ORM groups rows by which values are None and
        # sends each group alone (thousands of statements for a mixed sweep); this is one batch.
        db.session.execute(Notification.__table__.insert(), values)
    if any(v["status"] == "pending" for v in values):
        db.session.info["crm_outbox_has_new"] = True
    return added


# ---- after commit: wake the dispatcher --------------------------------------------------


def _wake_dispatcher(session: Session) -> None:
    if not session.info.pop("crm_outbox_has_new", False):
        return
    if not current_app.config.get("REDIS_URL"):
        return  # the in-process scheduler (embedded mode) dispatches on its next tick
    from app.core.jobs import enqueue, redis_connection

    try:
        # One waiting sweep is enough: it claims whatever is due when it starts. The flag is
        # cleared by the sweep before it claims (``sweep_started``), so rows committed after
        # that wake a new one; it expires on its own if the sweep never runs.
        if not redis_connection().set(WAKE_KEY, "1", nx=True, ex=WAKE_SECONDS):
            return
        enqueue("app.comms.jobs.dispatch_outbox", queue="notifications", retries=0)
    except Exception as exc:  # Redis down: the rows wait; the periodic dispatch sends them
        log.warning("outbox: could not wake the dispatcher (%s); rows wait for the next run", exc)


WAKE_KEY = "crm:outbox:wake"
"""Set while an outbox sweep is queued and has not started: further commits need not queue one."""
WAKE_SECONDS = 60


def sweep_started() -> None:
    """A sweep is about to claim rows: the next commit with new rows queues another one."""
    from app.core.jobs import redis_connection

    connection = redis_connection()
    if connection is not None:
        try:
            connection.delete(WAKE_KEY)
        except Exception as exc:  # the flag expires by itself
            log.warning("outbox: could not clear the wake flag (%s)", exc)


def _forget_on_rollback(session: Session) -> None:
    session.info.pop("crm_outbox_has_new", None)


_installed = False


def install_outbox_hooks() -> None:
    global _installed
    if _installed:
        return
    event.listen(Session, "after_commit", _wake_dispatcher)
    event.listen(
        Session, "after_soft_rollback", lambda session, previous: _forget_on_rollback(session)
    )
    _installed = True


# ---- dispatch -----------------------------------------------------------------------------


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0


def release_stale_claims() -> int:
    """Rows claimed by a worker that died (kill -9) go back to pending after the lease."""
    lease = int(current_app.config.get("CRM_OUTBOX_LEASE_SECONDS", 300))
    result = db.session.execute(
        update(Notification)
        .where(
            Notification.status == "sending",
            Notification.claimed_at < utcnow() - timedelta(seconds=lease),
        )
        .values(status="pending", claimed_at=None),
        execution_options=UNSCOPED,
    )
    db.session.commit()
    return result.rowcount or 0


def claim_due(batch: int) -> list[int]:
    """Mark up to ``batch`` due rows as ours; committed, so no other worker takes them."""
    query = (
        select(Notification.id)
        .where(Notification.status == "pending", Notification.next_attempt_at <= utcnow())
        .order_by(Notification.id)
        .limit(batch)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(db.session.scalars(query, execution_options=UNSCOPED))
    if ids:
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == "pending")
            .values(status="sending", claimed_at=utcnow()),
            execution_options=UNSCOPED,
        )
    db.session.commit()
    return ids


def send_one(notification_id: int) -> bool:
    """Send one claimed row and record the outcome; True when it went out."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.status != "sending":
        return False
    sender = current_app.config.get("MAIL_DEFAULT_SENDER", "fincrm@localhost")
    entry = MessageLog(
        channel=row.channel,
        sender=sender if row.channel == "email" else "FinCRM",
        recipient=row.address or f"user {row.recipient_user_id}",
        subject=row.subject,
        body=row.body,
        related_type=row.related_type,
        related_id=row.related_id,
        notification_id=row.id,
    )
    try:
        channel_for(row.channel).send(row)
    except ChannelError as exc:
        row.attempts += 1
        row.last_error = str(exc)[:2000]
        row.claimed_at = None
        max_attempts = int(current_app.config.get("CRM_OUTBOX_MAX_ATTEMPTS", 5))
        if row.attempts >= max_attempts:
            row.status = "failed"
        else:
            row.status = "pending"
            delay = BACKOFF_SECONDS[min(row.attempts - 1, len(BACKOFF_SECONDS) - 1)]
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        entry.status, entry.error = "failed", row.last_error
        db.session.add(entry)
        db.session.commit()
        return False
    row.status, row.sent_at, row.claimed_at = "sent", utcnow(), None
    entry.status = "sent"
    db.session.add(entry)
    db.session.commit()
    return True


def dispatch_outbox(batch: int = 50, max_rows: int = 5000) -> DispatchReport:
    """Send every due row, batch by batch, until none is left (or ``max_rows``)."""
    report = DispatchReport()
    release_stale_claims()
    throttle = float(current_app.config.get("CRM_DISPATCH_THROTTLE_SECONDS", 0))
    handled = 0
    while handled < max_rows:
        ids = claim_due(batch)
        if not ids:
            break
        for notification_id in ids:
            if send_one(notification_id):
                report.sent += 1
            else:
                report.retried += 1
            handled += 1
            if throttle:
                time.sleep(throttle)
    report.failed = db.session.query(Notification).filter(Notification.status == "failed").count()
    return report


# ---- the notification centre ----------------------------------------------------------


def unread_count(user_id: int) -> int:
    return (
        db.session.query(Notification.id)
        .filter(
            Notification.recipient_user_id == user_id,
            Notification.channel == "in_app",
            Notification.read_at.is_(None),
        )
        .count()
    )


def inbox(user_id: int, limit: int = 50, offset: int = 0) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.recipient_user_id == user_id, Notification.channel == "in_app")
            .order_by(Notification.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def mark_read(user_id: int, notification_id: int | None = None) -> int:
    """Mark one (or, without an id, every) in-app notification of ``user_id`` as read."""
    query = update(Notification).where(
        Notification.recipient_user_id == user_id,
        Notification.channel == "in_app",
        Notification.read_at.is_(None),
    )
    if notification_id is not None:
        query = query.where(Notification.id == notification_id)
    result = db.session.execute(query.values(read_at=utcnow()), execution_options=UNSCOPED)
    return result.rowcount or 0


# ---- preferences and the outbox screen ----------------------------------------------------


def save_staff_preferences(
    user_id: int, email: bool, sms: bool, in_app: bool, digest: str
) -> NotificationPreference:
    """A member of staff's own channels and digest (the caller commits)."""
    from app.comms.models import DIGESTS
    from app.core.errors import FieldError

    if digest not in DIGESTS:
        raise FieldError(f"must be one of: {', '.join(DIGESTS)}.", "digest")
    row = db.session.scalar(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    )
    if row is None:
        row = NotificationPreference(user_id=user_id)
        db.session.add(row)
    row.email_enabled, row.sms_enabled, row.in_app_enabled, row.digest = email, sms, in_app, digest
    return row


def requeue_failed(notification_ids: list[int]) -> int:
    """Send failed notifications again from scratch (the caller commits)."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.id.in_(notification_ids), Notification.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
    )
    db.session.info["crm_outbox_has_new"] = True
    return result.rowcount or 0


# ---- digests --------------------------------------------------------------------------


def send_digests(period: str) -> int:
    """One e-mail per recipient whose digest is ``period``, grouping held e-mails by kind."""
    window = timedelta(days=1 if period == "daily" else 7)
    since = utcnow() - window
    held = list(
        db.session.scalars(
            select(Notification)
            .join(
                NotificationPreference,
                or_(
                    NotificationPreference.user_id == Notification.recipient_user_id,
                    NotificationPreference.client_id == Notification.recipient_client_id,
                ),
            )
            .where(
                Notification.status == "held",
                Notification.channel == "email",
                NotificationPreference.digest == period,
                Notification.created_at >= since,
            )
            .order_by(Notification.recipient_user_id, Notification.kind, Notification.id),
            execution_options=UNSCOPED,
        )
    )
    groups: dict[tuple[int | None, int | None], list[Notification]] = {}
    for row in held:
        groups.setdefault((row.recipient_user_id, row.recipient_client_id), []).append(row)
    today = utcnow().date().isoformat()
    for (user_id, client_id), rows in groups.items():
        by_kind: dict[str, list[Notification]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        lines = []
        for kind in sorted(by_kind):
            lines.append(f"{kind.replace('_', ' ').capitalize()} ({len(by_kind[kind])})")
            lines.extend(f"  - {row.subject}" for row in by_kind[kind])
            lines.append("")
        digest = Notification(
            idempotency_key=f"digest:{period}:{user_id or 'c' + str(client_id)}:{today}:email",
            channel="email",
            kind=f"{period}_digest",
            recipient_user_id=user_id,
            recipient_client_id=client_id,
            address=rows[0].address,
            subject=f"Your {period} FinCRM digest: {len(rows)} notification(s)",
            body="\n".join(lines).strip(),
            status="pending",
            next_attempt_at=utcnow(),
        )
        exists = db.session.scalar(
            select(Notification.id).where(Notification.idempotency_key == digest.idempotency_key),
            execution_options=UNSCOPED,
        )
        if exists:
            continue
        db.session.add(digest)
        for row in rows:
            row.status, row.sent_at = "sent", utcnow()  # delivered through the digest
    db.session.commit()
    return len(groups)
