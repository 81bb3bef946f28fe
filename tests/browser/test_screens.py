"""What each role sees in a real browser: the menu after signing in through the login form, and
an agent adding a lead (phone normalised to E.164) or being told their e-mail is invalid.

Runs against the live server of ``tests/browser/conftest.py`` (CSRF on), with Debian's chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from app.extensions import db
from app.leads.models import Lead
from app.security.roles import (
    ADMIN_ONLY_MENUS,
    ADMIN_ROLE,
    MAX_TOP_MENUS,
    MENU_CATEGORIES,
    ROLES,
    menus_for,
)
from tests.support import PASSWORD, count

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOP_MENU = ".navbar-collapse > ul.nav.navbar-nav:not(.navbar-right) > li"


def sign_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    # Signed in: the user menu on the right carries the user's name, the login box is gone.
    expect(page.locator("#loginbox")).to_have_count(0)
    expect(page.locator(".navbar-right .dropdown-toggle")).to_contain_text(username.capitalize())


def _label(link: Locator) -> str:
    return link.inner_text().replace("\xa0", " ").strip()


def visible_menu(page: Page) -> dict[str, list[str]]:
    """The top navigation as a user finds it: each top-level entry -> the entries its dropdown
    shows when clicked (an empty list for a plain link)."""
    menu: dict[str, list[str]] = {}
    for entry in page.locator(TOP_MENU).all():
        toggle = entry.locator(":scope > a")
        name = _label(toggle)
        dropdown = entry.locator(":scope > ul.dropdown-menu")
        if dropdown.count() == 0:
            menu[name] = []
            continue
        expect(dropdown).to_be_hidden()
        toggle.click()
        expect(dropdown).to_be_visible()
        menu[name] = [_label(link) for link in dropdown.locator(":scope > li > a").all()]
        toggle.click()  # close it again
        expect(dropdown).to_be_hidden()
    return menu


def expected_business_menu(role: str) -> dict[str, list[str]]:
    """Categories and entries of FinCRM's own screens that ``role`` may open."""
    allowed = menus_for(role)
    return {
        category: [item for item in items if item in allowed]
        for category, items in MENU_CATEGORIES.items()
        if category in allowed
    }


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_sees_exactly_its_menu(page: Page, browser_world, role: str) -> None:
    sign_in(page, browser_world.logins[role])
    menu = visible_menu(page)

    business = {name: items for name, items in menu.items() if name in MENU_CATEGORIES}
    others = {name: items for name, items in menu.items() if name not in MENU_CATEGORIES}
    assert others == {}, "every top-level menu is a desk's"
    assert len(menu) <= MAX_TOP_MENUS
    shown = set(menu) | {item for items in menu.values() for item in items}
    if role == ADMIN_ROLE:
        # Admin also gets FAB's security screens, at the end of Organisation, and nothing else.
        security = [item for item in menu["Organisation"] if item in ADMIN_ONLY_MENUS]
        assert "List Users" in security and "List Roles" in security
        business["Organisation"] = [i for i in menu["Organisation"] if i not in ADMIN_ONLY_MENUS]
        assert business == expected_business_menu(role)
    else:
        assert business == expected_business_menu(role)
        assert shown == menus_for(role)
    # no separator first, last or twice in a row in any dropdown
    for entry in page.locator(TOP_MENU).all():
        html = (
            entry.locator(":scope > ul.dropdown-menu").inner_html()
            if entry.locator(":scope > ul.dropdown-menu").count()
            else ""
        )
        items = re.findall(r'<li( class="divider")?>', html)
        assert not items or (items[0] == "" and items[-1] == ""), html
        assert all(not (a and b) for a, b in zip(items, items[1:], strict=False)), html

    # Spot checks, hard-coded so a mistake in menus_for() cannot hide one here.
    if role == "Admin":
        assert list(menu) == [
            "Work",
            "Sales",
            "Lending",
            "Finance",
            "Markets",
            "Compliance",
            "Organisation",
        ]
        assert menu["Sales"] == [
            "Leads",
            "Lead board",
            "Import leads",
            "Interactions",
            "Clients",
            "Offers",
            "Campaigns",
            "Segments",
            "Pipeline",
        ]
        assert menu["Organisation"][:6] == [
            "Branches",
            "Staff",
            "Outbox",
            "Message log",
            "Preferences",
            "Jobs",
        ]
        assert menu["Compliance"] == [
            "Documents",
            "KYC cases",
            "KYC queue",
            "KYC report",
            "Audit log",
            "KYC overview",
        ]
        assert menu["Lending"] == [
            "Loan applications",
            "Application board",
            "New application",
            "Loan products",
            "Brokers",
            "Loan book",
        ]
        assert menu["Finance"] == [
            "Products and services",
            "Quotations",
            "Invoices",
            "Payments",
            "Payment links",
            "Parked credits",
            "Contracts",
            "Chart of accounts",
            "Journal",
            "Trial balance",
            "Receivables",
        ]
        assert menu["Markets"] == [
            "Trades",
            "Instruments",
            "Exchange",
            "Exchanges",
            "Wallets",
            "Currencies",
            "FX rates",
            "Reserves",
            "Vouchers",
            "Loyalty",
            "Portfolio value",
            "FX volume",
        ]
        assert menu["Work"] == [
            "Home",
            "My tasks",
            "Overdue",
            "All tasks",
            "Calendar",
            "Support queue",
            "Support cases",
            "Support overview",
            "Notifications",
            "My preferences",
            "All reports",
            "My exports",
            "Scheduled reports",
        ]
    elif role == "Agent":
        assert menu == {
            "Work": [
                "Home",
                "My tasks",
                "Overdue",
                "All tasks",
                "Calendar",
                "Support queue",
                "Support cases",
                "Notifications",
                "My preferences",
                "All reports",
                "My exports",
            ],
            "Sales": [
                "Leads",
                "Lead board",
                "Import leads",
                "Interactions",
                "Clients",
                "Offers",
                "Campaigns",
                "Segments",
                "Pipeline",
            ],
            "Finance": [
                "Products and services",
                "Quotations",
                "Invoices",
                "Payments",
                "Payment links",
                "Contracts",
            ],
            "Markets": [
                "Trades",
                "Instruments",
                "Exchange",
                "Exchanges",
                "Wallets",
                "Currencies",
                "FX rates",
                "Vouchers",
                "Loyalty",
                "Portfolio value",
                "FX volume",
            ],
            "Compliance": ["Documents", "KYC cases"],
            "Organisation": ["Branches"],
        }
        assert "Audit log" not in shown and "KYC queue" not in shown
        assert "List Users" not in shown and "Staff" not in shown
    elif role == "Broker":
        assert menu == {
            "Work": [
                "Home",
                "My tasks",
                "Overdue",
                "All tasks",
                "Calendar",
                "Notifications",
                "My preferences",
                "All reports",
                "My exports",
            ],
            "Lending": [
                "Loan applications",
                "Application board",
                "New application",
                "Loan products",
                "Brokers",
                "Loan book",
            ],
        }


def _choose(page: Page, select_id: str, option: str) -> None:
    """Pick ``option`` in a select2 drop-down the way a user does: open it, click the option."""
    page.locator(f"#select2-{select_id}-container").click()
    page.locator(".select2-container--open .select2-results__option", has_text=option).click()
    expect(page.locator(f"#select2-{select_id}-container")).to_have_text(
        re.compile(re.escape(option))
    )


def _open_add_form_from_menu(page: Page) -> None:
    page.locator(TOP_MENU).filter(has_text="Sales").locator(":scope > a").click()
    page.locator(TOP_MENU).filter(has_text="Sales").locator('a[href="/leadview/list/"]').click()
    expect(page).to_have_url(re.compile(r"/leadview/list/"))
    page.goto("/leadview/add")
    expect(page.locator("#model_form")).to_be_visible()
    # CSRF is on, as in production: the form carries its token.
    expect(page.locator("#model_form input[name=csrf_token]")).to_have_count(1)


def test_agent_adds_a_lead_and_sees_the_phone_in_e164(page: Page, browser_world) -> None:
    app, agent = browser_world.app, browser_world.logins["Agent"]
    sign_in(page, agent)
    _open_add_form_from_menu(page)

    page.locator("#first_name").fill("Meenakshi")
    page.locator("#last_name").fill("Browsertest")
    page.locator("#email").fill("Meenakshi.Browsertest@Example.com")
    page.locator("#phone").fill("+91 98765 43210")
    _choose(page, "source", "Referral")
    _choose(page, "status", "Contacted")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".alert-success")).to_contain_text("Added Row")
    row = page.locator("table tr", has_text="Meenakshi")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("+919876543210")
    expect(row).to_contain_text("meenakshi.browsertest@example.com")
    expect(row).to_contain_text("Contacted")  # the list shows the status in words
    expect(row).to_contain_text(f"Agent {agent.capitalize()}")  # assigned to the agent
    # Row scoping: the other agent's lead in the same branch is not on this agent's list.
    expect(page.get_by_text(browser_world.other_agent_lead)).to_have_count(0)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "agent-lead-list.png"), full_page=True)

    # The show page says the same.
    row.locator("a[href*='/leadview/show/']").first.click()
    expect(page.locator("body")).to_contain_text("+919876543210")
    expect(page.locator("body")).to_contain_text("Meenakshi")

    with app.app_context():
        lead = db.session.scalars(select(Lead).where(Lead.first_name == "Meenakshi")).one()
        assert lead.phone == "+919876543210"
        assert lead.email == "meenakshi.browsertest@example.com"
        assert lead.source == "referral"
        assert lead.status == "contacted"
        assert lead.assigned_agent is not None
        assert lead.assigned_agent.username == agent
        db.session.remove()


def test_agent_is_told_the_email_is_invalid_and_nothing_is_saved(page: Page, browser_world) -> None:
    app = browser_world.app
    with app.app_context():
        before = count(Lead)
        db.session.remove()
    sign_in(page, browser_world.logins["Agent"])
    page.goto("/leadview/add")

    page.locator("#first_name").fill("Badmail")
    page.locator("#last_name").fill("Browsertest")
    page.locator("#email").fill("not-an-email")
    page.locator("#phone").fill("+91 98765 43211")
    page.get_by_role("button", name="Save").click()

    # Still on the form, the message right beside the e-mail input, what was typed kept.
    expect(page).to_have_url(re.compile(r"/leadview/add"))
    email_cell = page.locator("td:has(> #email)")
    expect(email_cell.locator(".alert-danger")).to_contain_text("not a valid e-mail")
    expect(page.locator("td:has(> #phone) .alert-danger")).to_have_count(0)
    expect(page.locator("#email")).to_have_value("not-an-email")

    with app.app_context():
        assert count(Lead) == before
        assert db.session.scalar(select(Lead.id).where(Lead.first_name == "Badmail")) is None
        db.session.remove()
