"""Exports in a real browser: a small list downloads at once from its buttons; a large one opens
its page, whose progress bar climbs to 100% while an RQ worker makes the file, then shows the
download link."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import redis
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from rq import SimpleWorker
from sqlalchemy import func, select

from app.extensions import db
from app.leads.models import Lead
from app.org.models import StaffProfile
from tests.browser.test_screens import ARTIFACTS, sign_in
from tests.support import REDIS_TEST_URL, make_lead

pytestmark = pytest.mark.browser


@pytest.fixture
def rq_redis(browser_world, monkeypatch):
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    monkeypatch.setitem(browser_world.app.config, "REDIS_URL", REDIS_TEST_URL)
    yield conn
    conn.flushdb()


def _staff(app, username: str) -> StaffProfile:
    from flask_appbuilder.security.sqla.models import User

    user_id = db.session.scalar(select(User.id).where(User.username == username))
    return db.session.scalar(select(StaffProfile).where(StaffProfile.user_id == user_id))


def test_a_small_list_downloads_at_once_with_only_the_agents_rows(
    page: Page, browser_world, tmp_path
) -> None:
    agent = browser_world.logins["Agent"]
    with browser_world.app.app_context():
        make_lead(_staff(browser_world.app, agent), first_name='=HYPERLINK("http://x")')
        db.session.commit()
    sign_in(page, agent)
    page.goto("/leadview/list/")
    expect(page.locator("#export-buttons")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lead-list-export-buttons.png"))
    with page.expect_download() as info:
        page.locator("#export-xlsx").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".xlsx"
    sheet = load_workbook(path).worksheets[0]
    names = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert '=HYPERLINK("http://x")' in names
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    assert browser_world.other_agent_lead not in names  # another agent's lead


def test_a_large_export_shows_its_progress_bar_then_the_download(
    page: Page, browser_world, rq_redis, monkeypatch, tmp_path
) -> None:
    app = browser_world.app
    monkeypatch.setitem(app.config, "CRM_EXPORT_INLINE_ROWS", 20)
    manager = browser_world.logins["Manager"]
    with app.app_context():
        agent = _staff(app, browser_world.logins["Agent"])
        for n in range(150):
            make_lead(agent, first_name=f"Export{n:03d}", last_name="Browser")
        db.session.commit()
        expected = db.session.scalar(
            select(func.count(Lead.id)).where(Lead.branch_id == agent.branch_id)
        )

    sign_in(page, manager)
    page.goto("/leadview/list/")
    page.locator("#export-csv").click()
    expect(page).to_have_url(re.compile(r"/exports/\d+$"))
    bar = page.locator("#export-progress")
    expect(page.locator("#export-status")).to_have_text("Queued")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#export-download")).to_be_hidden()

    with app.app_context():  # the worker works the reports queue while the page polls
        SimpleWorker(["reports"], connection=rq_redis).work(burst=True)

    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_text("100%")
    expect(page.locator("#export-status")).to_have_text("Done")
    expect(page.locator("#export-download")).to_be_visible()
    expect(page.locator("#export-download")).to_contain_text(re.compile(r"leads-\d{8}-\d{4}\.csv"))
    expect(page.locator("#export-expiry")).to_contain_text("Kept until")
    # The bar fills its track (once Bootstrap's width transition is over).
    page.wait_for_function(
        "() => { const b = document.getElementById('export-progress');"
        " return b.offsetWidth >= b.parentElement.clientWidth - 2; }"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-progress-done.png"), full_page=True)

    with page.expect_download() as info:
        page.locator("#export-download").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    frame = pd.read_csv(path, encoding="utf-8-sig")
    assert len(frame) == expected > 150

    page.goto("/exports/list/")
    expect(page.locator("table.table-bordered")).to_contain_text("Leads")
