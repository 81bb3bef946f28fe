"""The navbar's search box in a real browser: type, press Enter, open the lead found; another
agent's lead is not among the results."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_screens import sign_in

pytestmark = pytest.mark.browser


def test_an_agent_searches_from_the_navbar_and_opens_the_result(page: Page, browser_world):
    sign_in(page, browser_world.logins["Manager"])
    box = page.locator("#global-search")
    box.fill(browser_world.other_agent_lead)
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q="))
    results = page.locator('ul.search-hits[data-kind="lead"] a')
    expect(results).to_have_count(1)
    results.first.click()
    expect(page).to_have_url(re.compile(r"/leadview/show/\d+"))
    expect(page.locator("body")).to_contain_text(browser_world.other_agent_lead)


def test_an_agent_does_not_find_another_agents_lead(page: Page, browser_world):
    sign_in(page, browser_world.logins["Agent"])
    page.locator("#global-search").fill(browser_world.other_agent_lead)
    page.locator("#global-search").press("Enter")
    expect(page.locator("#search-lead")).to_be_visible()
    expect(page.locator('ul.search-hits[data-kind="lead"] a')).to_have_count(0)
    page.locator("#global-search").fill("x")
    page.locator("#global-search").press("Enter")
    expect(page.locator("#search-message")).to_contain_text("Type at least 2 characters")
