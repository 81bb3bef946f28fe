"""Live notifications over the real Redis: one message per recipient after the commit, none
for a rolled-back transaction, a stream that sends the user's own state, and the polling
answer of the embedded mode."""

from __future__ import annotations

import json
import time

import pytest
from redis import Redis

from app.comms import live
from app.comms.services import Message, notify, notify_many
from app.extensions import db
from tests.support import REDIS_TEST_URL, login, make_branch, make_staff


@pytest.fixture
def with_redis(pg_app, monkeypatch):
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    pg_app.extensions.pop(live.EXTENSION_KEY, None)
    yield Redis.from_url(REDIS_TEST_URL)
    pg_app.extensions.pop(live.EXTENSION_KEY, None)


@pytest.fixture
def two_staff(pg_app):
    branch = make_branch()
    first, second = make_staff("Agent", branch), make_staff("Agent", branch)
    db.session.commit()
    return first.user, second.user


def listen(redis: Redis, *users):
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(live.channel_of(user.id) for user in users))
    return pubsub


def messages(pubsub, wait: float = 0.5) -> list[tuple[str, dict]]:
    found, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message:
            found.append((message["channel"].decode(), json.loads(message["data"])))
    return found


def test_a_committed_notification_is_published_once_to_its_recipient_only(with_redis, two_staff):
    first, second = two_staff
    pubsub = listen(with_redis, first, second)
    notify("test", "live:1", "Call Meera back", "today", user_id=first.id, link="/leadview/show/1")
    assert messages(pubsub, 0.3) == [], "nothing before the commit"
    db.session.commit()
    assert messages(pubsub) == [
        (
            live.channel_of(first.id),
            {"new": 1, "title": "Call Meera back", "link": "/leadview/show/1"},
        )
    ]


def test_a_rolled_back_notification_publishes_nothing(with_redis, two_staff):
    first, _ = two_staff
    pubsub = listen(with_redis, first)
    notify("test", "live:2", "Never sent", "gone", user_id=first.id)
    db.session.rollback()
    db.session.commit()  # a later, empty commit does not publish the forgotten one
    assert messages(pubsub) == []


def test_a_sweep_publishes_one_message_per_recipient(with_redis, two_staff):
    first, second = two_staff
    pubsub = listen(with_redis, first, second)
    notify_many(
        [
            Message("test", f"live:sweep:{n}", f"Task {n} overdue", "late", user_id=user.id)
            for n, user in enumerate([first, first, first, second])
        ]
    )
    db.session.commit()
    got = dict(messages(pubsub))
    assert got[live.channel_of(first.id)]["new"] == 3
    assert got[live.channel_of(first.id)]["title"] == "Task 2 overdue"
    assert got[live.channel_of(second.id)]["new"] == 1
    assert len(got) == 2


def test_without_redis_nothing_is_published_and_the_page_polls(pg_app, pg_client, two_staff):
    first, second = two_staff
    notify("test", "live:3", "Older", "x", user_id=first.id)
    notify("test", "live:4", "Newest", "y", user_id=first.id, link="/x")
    notify("test", "live:5", "Someone else's", "z", user_id=second.id)
    db.session.commit()
    assert login(pg_client, first.username).status_code == 302
    page = pg_client.get("/leadview/list/").get_data(as_text=True)
    assert 'data-latest-url="/notifications/latest"' in page
    assert "data-stream-url" not in page
    assert pg_client.get("/notifications/stream").status_code == 404
    answer = pg_client.get("/notifications/latest")
    assert answer.status_code == 200
    assert answer.json["unread"] == 2 and answer.json["title"] == "Newest"
    assert answer.json["link"] == "/x"


def test_the_stream_refuses_anonymous_visitors(pg_app, with_redis):
    answer = pg_app.test_client().get("/notifications/stream")
    assert answer.status_code in (302, 401)
    assert "text/event-stream" not in answer.headers.get("Content-Type", "")
    assert pg_app.test_client().get("/notifications/latest").status_code in (302, 401)


def test_the_stream_sends_the_state_then_each_new_notification_of_the_user(
    pg_app, with_redis, two_staff
):
    first, second = two_staff
    client = pg_app.test_client()
    assert login(client, first.username).status_code == 302
    page = client.get("/leadview/list/").get_data(as_text=True)
    assert 'data-stream-url="/notifications/stream"' in page
    answer = client.get("/notifications/stream", buffered=False)
    assert answer.status_code == 200
    assert answer.mimetype == "text/event-stream"
    chunks = iter(answer.response)

    def next_state() -> dict:
        while True:
            chunk = next(chunks)
            chunk = chunk.decode() if isinstance(chunk, bytes) else chunk
            data = [line[6:] for line in chunk.splitlines() if line.startswith("data: ")]
            if data:
                return json.loads(data[0])

    assert next_state() == {"unread": 0, "id": None, "title": None, "link": None}
    with pg_app.app_context():
        notify("test", "live:6", "For someone else", "x", user_id=second.id)
        db.session.commit()
        rows = notify("test", "live:7", "KYC case waiting", "y", user_id=first.id, link="/k/1")
        db.session.commit()
        mine = rows[0].id if rows[0].channel == "in_app" else rows[1].id
    state = next_state()
    assert state == {"unread": 1, "id": mine, "title": "KYC case waiting", "link": "/k/1"}
    answer.close()
