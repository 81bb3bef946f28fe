"""The daily sweeps write their outbox rows in bulk (``notify_many``): the same rows, channel by
channel, that ``notify`` writes one event at a time, so a member of staff's preferences, digests
and phone, a borrower's address, and "each event once" all still hold."""

from __future__ import annotations

from app.comms.models import Notification, NotificationPreference
from app.comms.services import Message, notify, notify_many
from app.extensions import db
from tests.support import make_branch, make_staff


def _outbox() -> list[tuple]:
    return sorted(
        (
            n.idempotency_key,
            n.channel,
            n.kind,
            n.recipient_user_id,
            n.address,
            n.subject,
            n.body,
            n.link,
            n.related_type,
            n.related_id,
            n.status,
            n.sent_at is not None,
        )
        for n in db.session.scalars(db.select(Notification))
    )


def _people():
    branch = make_branch()
    plain, digest, texter, no_phone = (make_staff("Agent", branch) for _ in range(4))
    texter.phone = "+61412345678"
    db.session.add_all(
        [
            NotificationPreference(user_id=digest.user_id, digest="daily"),
            NotificationPreference(
                user_id=texter.user_id, email_enabled=False, sms_enabled=True, in_app_enabled=False
            ),
            NotificationPreference(user_id=no_phone.user_id, sms_enabled=True),
        ]
    )
    db.session.flush()
    return plain, digest, texter, no_phone


def _mixed(plain, digest, texter, no_phone) -> list[Message]:
    both = ("email", "sms", "in_app")
    return [
        Message("task_due", "due:1", "Due soon", "Body 1", user_id=plain.user_id, link="/t/1"),
        Message("task_due", "due:2", "Due soon", "Body 2", user_id=digest.user_id),
        Message("task_due", "due:3", "Due soon", "Body 3", user_id=texter.user_id, channels=both),
        Message("task_due", "due:4", "Due soon", "Body 4", user_id=no_phone.user_id, channels=both),
        # Already in the outbox on e-mail: only the missing channel is added.
        Message("task_due", "seen:5", "Seen", "Body 5", user_id=plain.user_id),
        # The same event twice in one sweep: written once.
        Message("task_overdue", "twice:6", "Twice", "Body 6", user_id=digest.user_id),
        Message("task_overdue", "twice:6", "Twice", "Body 6", user_id=digest.user_id),
        Message(
            "loan_due_soon",
            "loan:7",
            "Instalment due",
            "Dear borrower",
            address="borrower@example.com",
            related_type="loan_instalment",
            related_id=7,
            channels=("email",),
        ),
        # A phone number is an SMS address: not written when only e-mail was asked for.
        Message(
            "loan_due_soon", "loan:8", "Due", "Body", address="+61400000000", channels=("email",)
        ),
        Message(
            "loan_due_soon", "loan:9", "Due", "Body", address="+61400000009", channels=("sms",)
        ),
    ]


def _seen(plain) -> None:
    notify("task_due", "seen:5", "Seen", "Body 5", user_id=plain.user_id, channels=("email",))
    db.session.flush()


def _one_at_a_time(messages: list[Message]) -> list[Message]:
    added = []
    for m in messages:
        if notify(
            m.kind,
            m.key,
            m.subject,
            m.body,
            user_id=m.user_id,
            address=m.address,
            link=m.link,
            channels=m.channels,
            related=_Related(m.related_type, m.related_id) if m.related_type else None,
        ):
            added.append(m)
        db.session.flush()
    return added


class _Related:
    def __init__(self, table: str, id_: int | str | None) -> None:
        self.__tablename__ = table
        self.id = id_


def test_a_bulk_sweep_writes_the_rows_notify_writes_on_a_mixed_case(app):
    people = _people()
    _seen(people[0])
    messages = _mixed(*people)
    added_one_by_one = _one_at_a_time(messages)
    expected = _outbox()
    db.session.execute(db.delete(Notification))
    _seen(people[0])

    added_in_bulk = notify_many(messages, batch=3)  # several batches: the key check spans them
    db.session.flush()

    assert _outbox() == expected
    assert [m.key for m in added_in_bulk] == [m.key for m in added_one_by_one]
    rows = {(row[0], row[10]) for row in expected}
    assert ("due:2:email", "held") in rows  # a digest reader's e-mail waits for the digest
    assert ("due:3:sms", "pending") in rows and ("due:3:email", "pending") not in rows
    assert not any(key.startswith("due:4:sms") for key, _ in rows)  # no phone, no SMS
    assert ("seen:5:in_app", "sent") in rows
    assert sum(key.startswith("twice:6") for key, _ in rows) == 2  # e-mail and in-app, once
    assert not any(key.startswith("loan:8") for key, _ in rows)


def test_a_second_bulk_sweep_writes_nothing(app):
    people = _people()
    messages = _mixed(*people)
    first = notify_many(messages)
    db.session.commit()
    count = len(_outbox())

    assert first and notify_many(messages) == []
    assert len(_outbox()) == count
