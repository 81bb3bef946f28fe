"""An agent imports leads in a real browser: uploads a small CSV with one bad row, reads the
report naming that row, imports the valid rows and finds them in the lead list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.leads.models import Lead
from tests.browser.test_screens import sign_in

pytestmark = pytest.mark.browser

CSV = (
    "first_name,last_name,email,phone,company\n"
    "Importa,Browserone,importa.one@example.com,+91 98111 22001,Acme\n"
    "Importb,Browsertwo,not-an-email,,Acme\n"
    "Importc,Browserthree,importc.three@example.com,+91 98111 22003,\n"
)


def test_an_agent_imports_the_valid_rows_of_a_csv(page: Page, browser_world, tmp_path) -> None:
    path = tmp_path / "new-leads.csv"
    path.write_text(CSV, encoding="utf-8")
    sign_in(page, browser_world.logins["Agent"])

    page.locator(".navbar-nav").get_by_text("Sales").click()
    page.get_by_role("link", name="Import leads").click()
    expect(page).to_have_url(re.compile(r"/leadimportview/upload"))
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Upload and check").click()

    expect(page.locator("#import-counts")).to_contain_text(
        "3 rows: 2 valid, 1 invalid, 0 duplicates"
    )
    bad = page.locator("#import-problems tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.first).to_contain_text("3")  # spreadsheet row 3: the header is row 1
    expect(bad.first).to_contain_text("email")

    page.get_by_role("button", name="Import the 2 valid rows").click()
    expect(page.locator("#import-counts")).to_contain_text("2 imported")
    page.get_by_role("link", name="Open the lead list").click()
    expect(page.locator("body")).to_contain_text("Browserone")
    expect(page.locator("body")).to_contain_text("Browserthree")
    expect(page.locator("body")).not_to_contain_text("Browsertwo")

    with browser_world.app.app_context():
        owners = set(
            db.session.scalars(select(Lead.assigned_agent_id).where(Lead.source == "import"))
        )
        assert len(owners) == 1  # the agent's own leads
