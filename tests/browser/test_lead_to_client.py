"""From a visitor's enquiry to a client, in a real browser: the public form, the agent's list,
an interaction that moves the score (and says why), qualification, conversion, and the new
client's timeline with the interaction on it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.clients.models import Client
from app.extensions import db
from app.leads.models import Lead
from tests.browser.test_screens import ARTIFACTS, _choose, sign_in
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def flow_agent(browser_world) -> str:
    """A branch with one agent, so the enquiry is handed to them."""
    with browser_world.app.app_context():
        branch = make_branch("FLW")
        username = make_staff("Agent", branch, username="agent.flow").user.username
        db.session.commit()
        db.session.remove()
    return username


def _score(page: Page) -> int:
    cell = page.locator("tr", has=page.locator("th", has_text=re.compile(r"^\s*Score\s*$")))
    return int(cell.locator("td").inner_text().strip())


def test_an_enquiry_becomes_a_client_with_its_history(page: Page, browser_world, flow_agent):
    # A visitor, not signed in, fills in the branch's public form.
    page.goto("/enquire/flw")
    page.get_by_label("First name").fill("Kavya")
    page.get_by_label("Last name").fill("Enquirer")
    page.get_by_label("E-mail").fill("Kavya.Enquirer@Example.in")
    page.get_by_label("Phone").fill("98450 12345")
    page.get_by_label("How can we help?").fill("Looking for a home loan")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#thanks")).to_be_visible()

    # The agent finds it in their own list.
    sign_in(page, flow_agent)
    page.goto("/leadview/list/")
    row = page.locator("table tr", has_text="Kavya")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("+919845012345")
    row.locator("a[href*='/leadview/show/']").first.click()
    lead_url = page.url
    score_before = _score(page)
    expect(page.locator(".score-breakdown li", has_text="engagement")).to_contain_text(
        "0 interaction(s)"
    )

    # They log a call from the lead's page.
    page.locator(".nav-tabs a", has_text="Interactions").click()
    page.locator("a[href*='/interactionview/add']").first.click()
    _choose(page, "kind", "Call")
    page.locator("#outcome").fill("Wants 40 lakh over 20 years")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_be_visible()

    # The score went up, and the page says why.
    page.goto(lead_url)
    assert _score(page) > score_before
    expect(page.locator(".score-breakdown li", has_text="engagement")).to_contain_text(
        "1 interaction(s)"
    )
    expect(page.locator(".score-breakdown li", has_text="recency")).not_to_contain_text(
        "no interaction yet"
    )

    # Qualify it.
    page.goto(lead_url.replace("/show/", "/edit/"))
    page.locator(".nav-tabs a", has_text="Detail").click()  # the page remembers the last tab
    _choose(page, "status", "Qualified")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_be_visible()

    # Convert it: the new client's timeline opens, with the call on it.
    page.goto(lead_url)
    page.locator("#convert-lead").click()
    expect(page).to_have_url(re.compile(r"/clientview/timeline/\d+"))
    expect(page.locator(".alert-success")).to_contain_text("Converted: Kavya Enquirer")
    call = page.locator("#timeline tr.timeline-interaction")
    expect(call).to_contain_text("Call: Wants 40 lakh over 20 years")
    expect(call).to_contain_text(flow_agent)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "client-timeline.png"), full_page=True)

    with browser_world.app.app_context():
        lead = db.session.scalars(select(Lead).where(Lead.first_name == "Kavya")).one()
        client = db.session.get(Client, lead.converted_client_id)
        assert (lead.source, lead.status) == ("web_form", "converted")
        assert client.email == "kavya.enquirer@example.in"
        assert client.relationship_manager.username == flow_agent
        db.session.remove()
