"""A notification written by another process (the worker) reaches an open page without a
reload: through Redis and Server-Sent Events within 2 s, in two tabs at once; and, with no
Redis (the embedded mode), by the page's polling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.comms import live
from tests.browser.test_screens import sign_in
from tests.support import REDIS_TEST_URL

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys
from tests.support import build_app
from app.extensions import db
from app.comms.services import notify
from flask_appbuilder.security.sqla.models import User

app = build_app(sys.argv[1], REDIS_URL=sys.argv[2] or None)
with app.app_context():
    user = db.session.query(User).filter_by(username=sys.argv[3]).one()
    notify("test", sys.argv[4], sys.argv[5], "written by the worker", user_id=user.id,
           link="/notifications/", channels=("in_app",))
    db.session.commit()
"""


def write_from_worker(app, username: str, key: str, subject: str, redis_url: str) -> float:
    """Write one in-app notification from a separate Python process; the time it committed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    done = subprocess.run(
        [sys.executable, "-c", WORKER, url, redis_url, username, key, subject],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return time.monotonic()


@pytest.fixture
def streaming(browser_world, monkeypatch):
    """The live server's app with Redis configured, as in production."""
    app = browser_world.app
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_TEST_URL)
    app.extensions.pop(live.EXTENSION_KEY, None)
    yield app
    app.extensions.pop(live.EXTENSION_KEY, None)


def test_a_notification_from_the_worker_reaches_two_open_tabs_within_2_seconds(
    context, streaming, browser_world
):
    username = browser_world.logins["Agent"]
    first, second = context.new_page(), context.new_page()
    sign_in(first, username)
    second.goto("/leadview/list/")
    for page in (first, second):
        bell = page.locator("#notification-bell")
        expect(bell).to_have_attribute("data-live", "stream")  # the stream is open
    before = int(first.locator("#unread-count").inner_text())
    committed = write_from_worker(
        streaming, username, f"live-browser:{time.time()}", "KYC case 42 waits", REDIS_TEST_URL
    )
    for page in (first, second):
        expect(page.locator("#unread-count")).to_have_text(str(before + 1), timeout=2_000)
        expect(page.locator("#crm-toast")).to_contain_text("KYC case 42 waits", timeout=2_000)
    assert time.monotonic() - committed < 2.5  # both tabs, from the worker's commit
    first.locator("#crm-toast a").click()
    expect(first).to_have_url(re.compile(r"/notifications/$"))


def test_without_redis_the_page_polls_and_shows_the_notification(page: Page, browser_world):
    username = browser_world.logins["Manager"]
    sign_in(page, username)
    bell = page.locator("#notification-bell")
    expect(bell).to_have_attribute("data-live", "polling")
    expect(bell).to_have_attribute("data-live-state", "current")
    before = int(page.locator("#unread-count").inner_text())
    write_from_worker(browser_world.app, username, f"poll:{time.time()}", "Stale loan stage", "")
    poll = live.POLL_SECONDS * 1000
    expect(page.locator("#unread-count")).to_have_text(str(before + 1), timeout=poll + 3_000)
    expect(page.locator("#crm-toast")).to_contain_text("Stale loan stage", timeout=2_000)
