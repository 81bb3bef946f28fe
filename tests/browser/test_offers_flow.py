"""Offers in a real browser: a manager adds an offer whose body names an unknown placeholder,
sees the message, corrects it, saves; the offer's page previews its audience; "Send now" sends
it once, and the client's outbox row carries the rendered body."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.clients.models import Client
from app.clients.services import prepare_client
from app.comms.models import Notification
from app.extensions import db
from app.offers.models import Offer
from tests.browser.test_screens import ARTIFACTS, sign_in
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def offers_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("OFR")
        manager = make_staff("Manager", branch, username="manager.offers")
        client = prepare_client(
            Client(
                name="Kavya Raman",
                email="kavya@client.example",
                branch_id=branch.id,
                relationship_manager_id=manager.user_id,
                investment_capacity="over_10m",
            )
        )
        db.session.add(client)
        db.session.commit()
        client_id = client.id
        db.session.remove()
    return browser_world.app, client_id


def test_manager_adds_previews_and_sends_an_offer(page: Page, offers_world):
    app, client_id = offers_world
    sign_in(page, "manager.offers")
    page.goto("/offerview/list/")
    page.goto("/offerview/add")
    page.locator("#name").fill("UHNI private banking")
    page.locator("#subject").fill("An invitation for {first_name}")
    page.locator("#body").fill("Dear {first_name}, your {tier} invitation awaits.")
    page.locator("#segments").select_option(["uhni"], force=True)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()

    # Refused, with the reason in the user's words, and nothing saved.
    expect(page.locator(".alert-danger").first).to_contain_text("unknown placeholder {tier}")
    with app.app_context():
        assert db.session.scalar(select(Offer).where(Offer.name == "UHNI private banking")) is None
        db.session.remove()

    page.goto("/offerview/add")
    page.locator("#name").fill("UHNI private banking")
    page.locator("#subject").fill("An invitation for {first_name}")
    page.locator("#body").fill("Dear {first_name}, your private banking invitation awaits.")
    page.locator("#segments").select_option(["uhni"], force=True)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success").first).to_be_visible()
    with app.app_context():
        offer_id = db.session.scalar(select(Offer.id).where(Offer.name == "UHNI private banking"))
        db.session.remove()
    assert offer_id is not None

    page.goto(f"/offerview/show/{offer_id}")
    audience = page.locator("#audience-count").inner_text()
    count = int(re.match(r"(\d+) client", audience).group(1))
    assert count >= 1
    with page.expect_navigation():
        page.locator("#run-offer").click()
    expect(page.locator(".alert-success").first).to_contain_text(f"Offer sent to {count} client")
    expect(page.locator("#audience-count")).to_have_text("0 clients")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "offer-sent.png"), full_page=True)

    with app.app_context():
        rows = db.session.scalars(
            select(Notification).where(
                Notification.recipient_client_id == client_id, Notification.kind == "offer"
            )
        ).all()
        assert [row.body for row in rows] == ["Dear Kavya, your private banking invitation awaits."]
        db.session.remove()
