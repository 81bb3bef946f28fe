"""KYC in a real browser: an agent prepares and submits a case, a compliance officer previews the
documents and rejects it with a reason, the agent resubmits, a second officer approves, and the
client shows as verified."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.clients.models import Client
from app.clients.services import prepare_client
from app.extensions import db
from app.kyc.models import KycCase
from tests.browser.test_screens import ARTIFACTS, _choose, sign_in
from tests.support import make_branch, make_staff

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture(scope="module")
def kyc_world(browser_world):
    with browser_world.app.app_context():
        branch = make_branch("KYC")
        agent = make_staff("Agent", branch, username="agent.kyc")
        make_staff("Compliance", branch, username="compliance.one")
        make_staff("Compliance", branch, username="compliance.two")
        db.session.add(
            prepare_client(
                Client(
                    name="Nisha Kycclient",
                    email="nisha@example.in",
                    branch_id=branch.id,
                    relationship_manager_id=agent.user_id,
                )
            )
        )
        db.session.commit()
        db.session.remove()
    return browser_world.app


def _switch_user(page: Page, username: str) -> None:
    page.goto("/logout/")
    sign_in(page, username)


def _upload(page: Page, case_url: str, doc_type: str) -> None:
    page.goto(case_url)
    page.locator("#kyc-upload").click()
    _choose(page, "doc_type", doc_type)
    page.locator("#file").set_input_files(
        files=[{"name": f"{doc_type}.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".alert-success")).to_contain_text("Uploaded")


def test_prepare_reject_resubmit_approve(page: Page, kyc_world):
    # The agent opens a case for their client and enters the identifiers.
    sign_in(page, "agent.kyc")
    page.goto("/kyccaseview/add")
    _choose(page, "client", "Nisha Kycclient")
    page.locator("#pan").fill("ABCPE1234F")
    page.locator("#aadhaar").fill("2341 2341 2346")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_be_visible()
    with kyc_world.app_context():
        case_id = db.session.query(KycCase.id).scalar()
        db.session.remove()
    case_url = f"/kyccaseview/show/{case_id}"

    # The case page says what is missing; the agent uploads each document from there.
    page.goto(case_url)
    expect(page.locator("#kyc-requirements")).to_contain_text("Proof of identity is missing")
    for doc_type in ("Passport", "Pan card", "Address proof"):
        _upload(page, case_url, doc_type)
    page.goto(case_url)
    expect(page.locator("#kyc-requirements .kyc-problem")).to_have_text(["OK", "OK", "OK"])
    page.locator("#kyc-submit").click()
    expect(page.locator(".alert-success")).to_contain_text("Submitted for review")

    # The first officer previews the documents in the queue and rejects with a reason.
    _switch_user(page, "compliance.one")
    page.goto("/kycqueue/")
    card = page.locator(f"#kyc-case-{case_id}")
    expect(card).to_contain_text("Nisha Kycclient")
    expect(card).to_contain_text("ABCPXXXX4F")  # masked
    expect(card.locator(".kyc-preview-toggle")).to_have_count(3)
    card.locator(".kyc-preview-toggle").first.click()  # the passport, shown in the page
    preview = card.locator("iframe.kyc-preview")
    expect(preview).to_have_count(1)
    shown = page.request.get(preview.get_attribute("src"))
    assert shown.ok and shown.headers["content-type"] == "application/pdf"
    assert shown.headers["content-disposition"].startswith("inline")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kyc-queue.png"), full_page=True)
    card.locator(".kyc-preview-toggle").first.click()  # and closed again
    reason = card.locator(".kyc-reason")
    reason.fill("Address proof older than three months")
    expect(reason).to_have_value("Address proof older than three months")
    with page.expect_navigation():
        reason.press("Enter")  # submits the reject form, as the button does
    expect(page.locator(".alert-info")).to_contain_text(f"Case #{case_id} rejected")

    # The agent sees why, and resubmits.
    _switch_user(page, "agent.kyc")
    page.goto(case_url)
    expect(page.locator("body")).to_contain_text("Address proof older than three months")
    page.locator("#kyc-submit").click()
    expect(page.locator(".alert-success")).to_contain_text("Submitted for review")

    # A second officer approves; the client is verified.
    _switch_user(page, "compliance.two")
    page.goto("/kycqueue/")
    with page.expect_navigation():
        page.locator(f"#kyc-case-{case_id} .kyc-approve").click()
    expect(page.locator(".alert-success")).to_contain_text(f"Case #{case_id} approved")
    with kyc_world.app_context():
        client_id = db.session.query(Client.id).filter(Client.name == "Nisha Kycclient").scalar()
        db.session.remove()
    page.goto(f"/clientview/show/{client_id}")
    kyc_row = page.locator("tr", has=page.locator("th", has_text=re.compile("KYC status")))
    expect(kyc_row).to_contain_text("Verified")
