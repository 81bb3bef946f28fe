"""The home page in a real browser: each role lands on it after signing in and sees the sections
of its own desks (and not the others'); a number opens the list of the rows it counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete

from app.core.types import utcnow
from app.extensions import db
from app.org.models import StaffProfile
from app.security.roles import ROLES
from app.tasks.models import Task
from tests.browser.test_screens import sign_in
from tests.test_home import EXPECTED_SECTIONS

pytestmark = pytest.mark.browser

EVERY_SECTION = set().union(*EXPECTED_SECTIONS.values())


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_lands_on_its_home_sections(page: Page, browser_world, role: str) -> None:
    sign_in(page, browser_world.logins[role])
    expect(page.locator("#home")).to_be_visible()
    for key in EXPECTED_SECTIONS[role]:
        expect(page.locator(f"#home-{key}")).to_be_visible()
    for key in EVERY_SECTION - EXPECTED_SECTIONS[role]:
        expect(page.locator(f"#home-{key}")).to_have_count(0)
    # The brand link and the menu's Work > Home lead back to the same page.
    page.locator(".navbar-brand").first.click()
    expect(page.locator("#home")).to_be_visible()
    page.locator(".navbar-nav > li > a", has_text="Work").click()
    page.locator(".dropdown-menu a", has_text="Home").click()
    expect(page.locator("#home")).to_be_visible()


def test_an_agents_overdue_task_count_opens_the_task(page: Page, browser_world) -> None:
    app, username = browser_world.app, browser_world.logins["Agent"]
    with app.app_context():
        from flask_appbuilder.security.sqla.models import User

        user = db.session.query(User).filter_by(username=username).one()
        profile = (
            db.session.get(StaffProfile, user.id)
            or db.session.query(StaffProfile).filter_by(user_id=user.id).one()
        )
        task = Task(
            title="Ring the browser client",
            assignee_id=user.id,
            created_by_id=user.id,
            branch_id=profile.branch_id,
            due_at=utcnow() - timedelta(hours=1),
        )
        db.session.add(task)
        db.session.commit()
        task_id = task.id
    try:
        sign_in(page, username)
        tasks = page.locator("#home-tasks")
        expect(page.locator("#home-clear")).to_have_count(0)
        expect(tasks.locator(".home-rows")).to_contain_text("Ring the browser client")
        overdue = tasks.locator('a.home-count[data-label="Overdue"]')
        expect(overdue).to_have_text("1")
        overdue.click()
        expect(page.get_by_text("Ring the browser client")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/mytasksview/list/\?"))
    finally:
        with app.app_context():
            db.session.execute(delete(Task).where(Task.id == task_id))
            db.session.commit()
