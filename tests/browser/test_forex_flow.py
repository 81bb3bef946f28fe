"""The forex desk in a real browser: the Admin tops up the EUR reserve; a Manager deposits to a
client's USD wallet, gets a quote on the Exchange page, executes it, and sees both wallet
balances and the loyalty points earned; the books balance in each currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.forex import wallets
from app.forex.models import Reserve, Wallet
from app.ledger import services as ledger
from app.loyalty.services import points_of
from tests.browser.test_screens import sign_in
from tests.forex_support import make_currencies, make_fx_client, make_rate
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def forex_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("FXB")
        make_staff("Admin", branch, username="admin.fx")
        manager = make_staff("Manager", branch, username="manager.fx")
        make_currencies("INR", "USD", "EUR")
        make_rate("USD", "EUR", "0.92")
        make_rate("USD", "INR", "83.00")
        client = make_fx_client(manager, name="Anjali Desai")
        wallet = wallets.wallet_for(client.id, "USD")
        db.session.commit()
        ids = {"client": client.id, "wallet": wallet.id}
        db.session.remove()
    return browser_world.app, ids


def test_admin_tops_up_manager_deposits_quotes_and_executes(page: Page, forex_world):
    app, ids = forex_world
    sign_in(page, "admin.fx")
    page.goto("/reserves/")
    expect(page.locator("#reserve-EUR")).to_have_text("0.00")
    page.locator("#topup-currency").select_option("EUR")
    page.locator("#topup-amount").fill("5000")
    with page.expect_navigation():
        page.locator("#topup-submit").click()
    expect(page.locator(".alert-success")).to_contain_text("The EUR reserve holds 5,000.00.")
    expect(page.locator("#reserve-EUR")).to_have_text("5,000.00")

    page.goto("/logout/")
    sign_in(page, "manager.fx")
    page.goto("/reserves/")
    expect(page.locator("#reserves")).to_have_count(0)  # Admin only
    page.goto(f"/walletview/show/{ids['wallet']}")
    page.locator("#deposit-amount").fill("500.00")
    with page.expect_navigation():
        page.locator("#deposit-submit").click()
    expect(page.locator(".alert-success")).to_contain_text("the USD wallet holds 500.00")
    expect(page.locator("#wallet-balance")).to_have_text("500.00")
    expect(page.locator("#wallet-ledger-balance")).to_have_text("500.00")
    # a withdrawal beyond the balance is refused on the page
    page.locator("#withdraw-amount").fill("600")
    with page.expect_navigation():
        page.locator("#withdraw-submit").click()
    expect(page.locator(".alert-danger")).to_contain_text(
        "wallet USD holds 500.00, less than 600.00"
    )

    page.goto("/exchange/")
    page.locator("#client_id").select_option(label="Anjali Desai")
    page.locator("#sell_currency").select_option("USD")
    page.locator("#buy_currency").select_option("EUR")
    page.locator("#sell_amount").fill("100.00")
    with page.expect_navigation():
        page.locator("#get-quote").click()
    expect(page.locator("#quote-rate")).to_have_text("0.91540000")
    expect(page.locator("#quote-spread")).to_have_text("50 basis points")
    expect(page.locator("#quote-buy")).to_have_text("91.54 EUR")
    expect(page.locator("#quote-expiry")).to_contain_text("IST")  # the desk's branch's zone
    with page.expect_navigation():
        page.locator("#execute").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "100.00 USD sold for 91.54 EUR; 83 loyalty point(s) earned."
    )
    expect(page.locator("#quote-status")).to_have_text("executed")
    expect(page.locator("#balance-USD")).to_have_text("400.00")
    expect(page.locator("#balance-EUR")).to_have_text("91.54")
    expect(page.locator("#quote-points")).to_have_text("83")
    expect(page.locator("#execute")).to_have_count(0)

    page.goto("/loyaltytransactionview/list/")
    expect(page.get_by_text("Exchange FX-")).to_be_visible()

    with app.app_context():
        balances = {
            w.currency: w.balance
            for w in db.session.scalars(select(Wallet).where(Wallet.client_id == ids["client"]))
        }
        assert balances == {"USD": Decimal("400.00"), "EUR": Decimal("91.54")}
        eur = db.session.scalars(select(Reserve).where(Reserve.currency == "EUR")).one()
        assert eur.balance == Decimal("4908.46") == wallets.reserve_ledger_balance("EUR")
        assert points_of(ids["client"]) == 83
        assert ledger.trial_balance_report().balanced
        db.session.remove()
