"""Brokerage in a real browser: a manager records two buys through the trade form, settles
them, records and settles a partial sell, and after a price change reads the hand-worked
portfolio figures (average cost, realised and unrealised P&L to the cent) on the portfolio
page; the books balance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.brokerage.models import Instrument, Trade
from app.clients.models import Client
from app.extensions import db
from app.ledger.services import trial_balance_report
from tests.browser.test_screens import ARTIFACTS, _choose, sign_in
from tests.support import make_branch, make_staff
from tests.test_brokerage import make_instrument

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def brokerage_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("BRK")
        make_staff("Manager", branch, username="manager.brk")
        agent = make_staff("Agent", branch, username="agent.brk")
        client = Client(
            name="Priya Brokertest",
            branch_id=branch.id,
            relationship_manager_id=agent.user_id,
            risk_profile="aggressive",
        )
        db.session.add(client)
        make_instrument("BRKACME", price="10")
        db.session.commit()
        client_id = client.id
        db.session.remove()
    return browser_world.app, client_id


def _record(page: Page, side: str, quantity: str, price: str, fees: str) -> None:
    page.goto("/tradeview/add")
    _choose(page, "client", "Priya Brokertest")
    _choose(page, "instrument", "BRKACME")
    _choose(page, "side", side.capitalize())
    page.locator("#quantity").fill(quantity)
    page.locator("#price").fill(price)
    page.locator("#fees").fill(fees)
    # The trade date is left empty: today.
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Added Row")


def _settle_pending(page: Page, app) -> None:
    with app.app_context():
        ids = db.session.scalars(
            select(Trade.id).where(Trade.status == "pending").order_by(Trade.id)
        ).all()
        db.session.remove()
    for trade_id in ids:
        page.goto(f"/tradeview/show/{trade_id}")
        with page.expect_navigation():
            page.locator("#trade-settle").click()
        expect(page.locator(".alert-success")).to_contain_text("settled")


def test_manager_records_settles_and_reads_the_portfolio(page: Page, brokerage_world):
    app, client_id = brokerage_world
    sign_in(page, "manager.brk")
    _record(page, "buy", "100", "10.00", "10.00")
    _record(page, "buy", "50", "13.00", "5.00")
    _settle_pending(page, app)
    _record(page, "sell", "60", "15.00", "6.00")
    _settle_pending(page, app)
    expect(page.locator(".alert-success")).to_contain_text("Realised P&L 228.00")

    # Selling more than is held is refused on the form, nothing saved.
    page.goto("/tradeview/add")
    _choose(page, "client", "Priya Brokertest")
    _choose(page, "instrument", "BRKACME")
    _choose(page, "side", "Sell")
    page.locator("#quantity").fill("91")
    page.locator("#price").fill("15.00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-danger")).to_contain_text("can sell at most 90")

    with app.app_context():
        acme = db.session.scalar(select(Instrument).where(Instrument.symbol == "BRKACME"))
        acme.last_price = Decimal("12.50")
        db.session.commit()
        assert db.session.scalar(select(db.func.count(Trade.id))) == 3
        db.session.remove()

    page.goto(f"/clientview/show/{client_id}")
    page.locator("#client-portfolio").click()
    row = page.locator("#portfolio tr[data-symbol=BRKACME]")
    expect(row.locator("[data-field=quantity]")).to_have_text("90")
    expect(row.locator("[data-field=average_cost]")).to_have_text("11.10")
    expect(row.locator("[data-field=cost]")).to_have_text("999.00")
    expect(row.locator("[data-field=market_value]")).to_have_text("1,125.00")
    expect(row.locator("[data-field=unrealised_pnl]")).to_have_text("126.00")
    expect(row.locator("[data-field=realised_pnl]")).to_have_text("228.00")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "brokerage-portfolio.png"), full_page=True)

    with app.app_context():
        assert trial_balance_report().balanced
        db.session.remove()
