"""Lending in a real browser: a broker submits an application with two borrowers and a company
guarantor whose ABN is wrong, sees the error beside the ABN, corrects it and submits; the BDM
approves and settles it; the schedule appears; a repayment is recorded; the books balance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.lending.models import LoanApplication, LoanProductFee
from tests.browser.test_screens import ARTIFACTS, sign_in
from tests.lending_support import make_broker, make_product
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser

BAD_ABN, GOOD_ABN = "51 824 753 557", "51 824 753 556"


@pytest.fixture(scope="module")
def lending_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("LND")
        bdm = make_staff("LoanOfficer", branch, username="bdm.lend")
        broker_user = make_staff("Broker", branch, username="broker.lend")
        make_staff("Admin", branch, username="admin.lend")
        product = make_product(name="Owner-occupier home loan")
        db.session.add(
            LoanProductFee(product_id=product.id, fee_type="application", amount=Decimal("600"))
        )
        broker = make_broker(branch, broker_user, company="Harbour Finance")
        broker.bdms.append(bdm.user)
        db.session.commit()
        db.session.remove()
    return browser_world.app


def _switch_user(page: Page, username: str) -> None:
    page.goto("/logout/")
    sign_in(page, username)


def _fill_party(page: Page, index: int, **values: str) -> None:
    for name, value in values.items():
        field = page.locator(f"#parties-{index}-{name}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def _move(page: Page, stage: str, settled_on: str | None = None) -> None:
    page.locator("#to-stage").select_option(stage)
    if settled_on:
        page.locator("#settled-on").fill(settled_on)
    with page.expect_navigation():
        page.locator("#move-stage").click()
    expect(page.locator(".alert-success")).to_contain_text(f"is now {stage}")


def test_broker_submits_bdm_settles_repayment_balances(page: Page, lending_world):
    sign_in(page, "broker.lend")
    page.goto("/loans/new")
    page.locator("#product_id").select_option(index=1)
    page.locator("#amount").fill("500000")
    page.locator("#term_months").fill("360")
    page.locator("#interest_rate").fill("5.5")
    page.locator("#repayment_frequency").select_option("monthly")
    page.locator("#valuer_company").fill("Acme Valuers")
    page.locator("#qs_company").fill("Quantity Co")
    _fill_party(page, 0, first_name="Asha", last_name="Verma", email="asha@example.com")
    page.locator("#add-party").click()
    _fill_party(page, 1, first_name="Ravi", last_name="Verma", email="ravi@example.com")
    page.locator("#add-party").click()
    _fill_party(page, 2, role="guarantor", party_type="company")
    expect(page.locator("#parties-2-first_name")).to_be_hidden()  # a company's own fields
    _fill_party(page, 2, company_name="Verma Holdings Pty Ltd", abn=BAD_ABN, guarantees="1")
    with page.expect_navigation():
        page.locator("#submit-application").click()

    # Refused: the message sits beside the ABN, everything typed is still there, nothing saved.
    expect(page.locator("#parties-2-abn-error")).to_contain_text("not a valid ABN")
    expect(page.locator("#parties-1-first_name")).to_have_value("Ravi")
    expect(page.locator("#parties-2-company_name")).to_have_value("Verma Holdings Pty Ltd")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "loan-application-error.png"), full_page=True)
    with lending_world.app_context():
        assert db.session.query(LoanApplication).count() == 0
        db.session.remove()
    page.locator("#parties-2-abn").fill(GOOD_ABN)
    with page.expect_navigation():
        page.locator("#submit-application").click()
    expect(page.locator(".alert-success")).to_contain_text("submitted with 3 parties")
    expect(page.locator("#loan-parties")).to_contain_text("Verma Holdings Pty Ltd")
    application_url = page.url

    # The BDM takes it through assessment and approval to settlement.
    _switch_user(page, "bdm.lend")
    page.goto(application_url)
    _move(page, "assessment")
    _move(page, "approved")
    _move(page, "settled", settled_on="2026-01-31")
    page.locator("#tab-link-schedule").click()
    schedule = page.locator("#loan-schedule")
    expect(schedule.locator("tr")).to_have_count(361)  # header + 360 instalments
    expect(schedule.locator("tr").nth(1)).to_contain_text("2,838.95")
    expect(schedule.locator("tr").nth(1)).to_contain_text("2026-02-28")

    # A repayment: interest first, then principal.
    page.locator("#tab-link-repayments").click()
    page.locator("#repayment-amount").fill("2838.95")
    page.locator("#repayment-form input[name=received_on]").fill("2026-02-27")
    with page.expect_navigation():
        page.locator("#record-repayment").click()
    expect(page.locator(".alert-success")).to_contain_text("interest 2,291.67, principal 547.28")
    page.locator("#tab-link-schedule").click()
    expect(schedule.locator("tr").nth(1).locator(".instalment-status")).to_have_text("paid")
    page.locator("#tab-link-ledger").click()
    expect(page.locator("#loan-ledger")).to_contain_text("Disbursement")
    page.screenshot(path=str(ARTIFACTS / "loan-application-settled.png"), full_page=True)

    # The books balance.
    _switch_user(page, "admin.lend")
    page.goto("/trialbalance/")
    expect(page.locator("#trial-balance-status")).to_contain_text("Balanced: debits equal credits")
    loans_row = page.locator("#trial-balance tr", has_text="Loans receivable")
    expect(loans_row).to_contain_text("499,452.72")  # 500,000.00 lent less 547.28 repaid
