"""Support in a real browser: an agent of the support desk finds an urgent case at the top of
the queue (due first, in the branch's time), takes it, replies (the reply goes to the outbox
tagged with the case), is refused a move the workflow does not allow, and resolves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.clients.models import Client
from app.clients.services import prepare_client
from app.comms.models import Notification
from app.extensions import db
from app.support.models import SupportCase
from app.support.services import open_case
from tests.browser.test_screens import sign_in
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def support_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("SUP", tz="Asia/Kolkata")
        make_staff("Support", branch, username="support.desk")
        client = prepare_client(
            Client(name="Nisha Kapoor", email="nisha@client.example", branch_id=branch.id)
        )
        db.session.add(client)
        db.session.flush()
        normal = open_case(client.id, "Address change", priority="normal")
        urgent = open_case(client.id, "Card blocked abroad", priority="urgent")
        db.session.commit()
        ids = (urgent.id, normal.id)
        db.session.remove()
    return browser_world.app, ids


def test_support_takes_replies_and_resolves_an_urgent_case(page: Page, support_world):
    app, (urgent, normal) = support_world
    sign_in(page, "support.desk")
    page.goto("/supportqueue/?sort=due")
    rows = page.locator("#support-queue tbody tr")
    expect(rows.first).to_have_id(f"support-case-{urgent}")  # due soonest
    expect(page.locator(f"#support-case-{normal}")).to_be_visible()
    expect(rows.first.locator(".support-due")).to_contain_text(":")

    with page.expect_navigation():
        rows.first.locator(".support-take").click()
    expect(page.locator(".alert-success").first).to_be_visible()
    expect(page.locator(f"#support-case-{urgent} .support-assignee")).to_have_text("support.desk")
    expect(page.locator(f"#support-case-{urgent} .support-status")).to_have_text("Open")

    page.goto(f"/supportcaseview/show/{urgent}")
    page.locator("#support-reply-form textarea[name=body]").fill("We have unblocked your card.")
    with page.expect_navigation():
        page.locator("#support-reply").click()
    expect(page.locator("#support-conversation")).to_contain_text("We have unblocked your card.")
    with app.app_context():
        reply = db.session.scalars(
            select(Notification).where(Notification.address == "nisha@client.example")
        ).one()
        assert f"[Case #{urgent}]" in reply.subject

    # The workflow names the moves it allows; resolving is one of them.
    expect(page.locator(".support-move-closed")).to_have_count(0)
    with page.expect_navigation():
        page.locator(".support-move-resolved").click()
    expect(page.locator(".alert-success").first).to_be_visible()
    with app.app_context():
        assert db.session.get(SupportCase, urgent).status == "resolved"
