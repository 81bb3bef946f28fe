"""Times in a real browser: a Sydney agent types a task's due time in Sydney time, the list and
the task's page show it in AEDT, the edit form shows it back as typed, and the database holds
the UTC instant."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.org.models import Branch
from app.tasks.models import Task
from tests.browser.test_screens import sign_in
from tests.support import make_staff

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _choose(page: Page, select_id: str, option: str) -> None:
    page.locator(f"#select2-{select_id}-container").click()
    page.locator(".select2-container--open .select2-results__option", has_text=option).click()


def test_a_sydney_agent_types_a_due_time_in_sydney_time(page: Page, browser_world) -> None:
    app = browser_world.app
    with app.app_context():
        sydney = db.session.scalars(select(Branch).where(Branch.code == "SYD")).one()
        username = make_staff("Agent", sydney, username="sydney.browser").user.username
        db.session.commit()
        db.session.remove()
    sign_in(page, username)
    page.goto("/taskview/add")
    expect(page.locator("#model_form")).to_be_visible()
    expect(page.locator("#model_form")).to_contain_text("Australia/Sydney")
    page.locator("#title").fill("Ring the Harbour family")
    page.locator("#due_at").fill("2026-12-07T09:30")  # the browser's date-and-time input
    _choose(page, "priority", "High")
    _choose(page, "status", "Open")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Added Row")
    page.goto("/taskview/list/")
    row = page.locator("table tr", has_text="Ring the Harbour family")
    expect(row).to_contain_text("07 Dec 2026 09:30 AEDT")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sydney-task-list.png"), full_page=True)

    with app.app_context():
        task = db.session.scalars(select(Task).where(Task.title == "Ring the Harbour family")).one()
        assert task.due_at == datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
        task_id = task.id
        db.session.remove()

    page.goto(f"/taskview/edit/{task_id}")
    expect(page.locator("#due_at")).to_have_value("2026-12-07T09:30")
    page.goto(f"/taskview/show/{task_id}")
    expect(page.locator("body")).to_contain_text(re.compile(r"07 Dec 2026 09:30 AEDT"))
