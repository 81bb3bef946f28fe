"""Billing in a real browser: a manager writes a quotation with two lines, sends it, records
the client's acceptance, converts it to an invoice, issues the invoice (its number appears),
records a partial payment and sees the invoice partially paid with the balance due."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.billing_support import make_client
from tests.browser.test_screens import ARTIFACTS, sign_in
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def billing_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("BIL", tz="UTC")
        make_staff("Manager", branch, username="manager.bill")
        agent = make_staff("Agent", branch, username="agent.bill")
        make_client(agent, name="Kavya Menon")
        db.session.commit()
        db.session.remove()
    return browser_world.app


def _click(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def test_manager_quotes_converts_issues_and_records_a_partial_payment(page: Page, billing_world):
    sign_in(page, "manager.bill")
    page.goto("/quotationview/add")
    page.locator("#client_id").select_option(label="Kavya Menon")
    page.locator("#valid_until").fill("2099-12-31")
    page.locator("#lines-0-description").fill("Advisory retainer")
    page.locator("#lines-0-quantity").fill("3")
    page.locator("#lines-0-unit_price").fill("333.33")
    page.locator("#lines-0-tax_rate").fill("18")
    page.locator("#lines-1-description").fill("Courier")
    page.locator("#lines-1-quantity").fill("1.5")
    page.locator("#lines-1-unit_price").fill("10.05")
    page.locator("#lines-1-tax_rate").fill("5")
    _click(page, "#billing-save")
    expect(page.locator(".alert-success")).to_contain_text("saved")
    expect(page.locator("#quotation-status")).to_have_text("draft")
    expect(page.locator("#billing-lines")).to_contain_text("Advisory retainer")
    expect(page.locator("#doc-total")).to_have_text("1,195.82")

    _click(page, "#quotation-sent")
    expect(page.locator("#quotation-status")).to_have_text("sent")
    _click(page, "#quotation-accepted")
    expect(page.locator("#quotation-status")).to_have_text("accepted")
    _click(page, "#quotation-convert")
    expect(page.locator(".alert-success")).to_contain_text("Draft invoice")
    expect(page.locator("#invoice-status")).to_have_text("draft")
    expect(page.locator("#billing-lines")).to_contain_text("Courier")

    _click(page, "#invoice-issue")
    expect(page.locator(".alert-success")).to_contain_text("issued")
    expect(page.locator("#invoice-number")).to_have_text("INV-2026-000001".replace("2026", _year()))
    expect(page.locator("#invoice-status")).to_have_text("issued")

    page.locator("#payment-amount").fill("2000")
    _click(page, "#payment-record")
    expect(page.locator(".alert-danger")).to_contain_text("balance due of 1195.82")

    page.locator("#payment-amount").fill("195.82")
    page.locator("#payment-method").select_option("upi")
    _click(page, "#payment-record")
    expect(page.locator(".alert-success")).to_contain_text("balance due 1,000.00")
    expect(page.locator("#invoice-status")).to_have_text("partially_paid")
    expect(page.locator("#invoice-balance")).to_have_text("1,000.00")
    expect(page.locator("#invoice-payments")).to_contain_text("195.82")
    expect(page.locator("#invoice-ledger")).to_contain_text("Payment on INV-")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "billing-invoice-partially-paid.png"), full_page=True)

    with page.expect_download() as download:
        page.locator("#invoice-pdf").click()
    assert download.value.suggested_filename.startswith("INV-")


def _year() -> str:
    from datetime import UTC, datetime

    return str(datetime.now(UTC).year)
