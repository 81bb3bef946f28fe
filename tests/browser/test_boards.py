"""The lead board in a real browser, with the keyboard only: a card moved with its "Move to"
list lands in the new column and stays there after a reload; a move the lead's rules refuse
says why on the card and leaves it where it was."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.leads.models import Lead
from tests.browser.test_screens import ARTIFACTS, sign_in
from tests.support import make_branch, make_lead, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def board_agent(browser_world) -> dict:
    with browser_world.app.app_context():
        agent = make_staff("Agent", make_branch("BRD"), username="agent.board")
        moving = make_lead(agent, first_name="Boardmove", last_name="Keyboard")
        refused = make_lead(
            agent, first_name="Boardrefuse", last_name="Keyboard", status="contacted"
        )
        dragged = make_lead(agent, first_name="Boarddrag", last_name="Mouse")
        db.session.commit()
        found = {
            "username": agent.user.username,
            "moving": moving.id,
            "refused": refused.id,
            "dragged": dragged.id,
        }
        db.session.remove()
    return found


def _column(page: Page, key: str):
    return page.locator(f'.board-column[data-column="{key}"]')


def _move_with_keyboard(page: Page, card, label: str) -> None:
    card.focus()
    expect(card).to_be_focused()
    page.keyboard.press("Tab")  # the lead's name (a link)
    page.keyboard.press("Tab")  # the "Move to" list
    select = card.locator("select.board-move-to")
    expect(select).to_be_focused()
    page.keyboard.type(label)
    expect(select).to_have_value(label.lower())
    page.keyboard.press("Tab")  # the reason box is hidden for this column: straight to Move
    expect(card.get_by_role("button", name="Move")).to_be_focused()
    page.keyboard.press("Enter")


def _status(browser_world, lead_id: int) -> str:
    with browser_world.app.app_context():
        status = db.session.get(Lead, lead_id).status
        db.session.remove()
    return status


def test_a_card_moves_with_the_keyboard_and_a_refusal_shows_on_the_card(
    page: Page, browser_world, board_agent
):
    sign_in(page, board_agent["username"])
    page.goto("/leadboard/")
    moving = page.locator(".board-card", has_text="Boardmove")
    expect(moving).to_have_attribute("data-column", "new")
    expect(_column(page, "new").locator(".board-count")).to_have_text("2")

    _move_with_keyboard(page, moving, "Contacted")
    expect(moving).to_contain_text("Boardmove Keyboard is now contacted.")
    expect(_column(page, "contacted").locator(".board-card", has_text="Boardmove")).to_have_count(1)
    expect(_column(page, "contacted").locator(".board-count")).to_have_text("2")
    expect(_column(page, "new").locator(".board-count")).to_have_text("1")

    page.reload()
    expect(_column(page, "contacted").locator(".board-card", has_text="Boardmove")).to_have_count(1)
    expect(_column(page, "new").locator(".board-card", has_text="Boardmove")).to_have_count(0)
    assert _status(browser_world, board_agent["moving"]) == "contacted"

    refused = page.locator(".board-card", has_text="Boardrefuse")
    _move_with_keyboard(page, refused, "New")
    expect(refused.locator(".board-card-message")).to_have_text(
        "Not moved: Status: cannot move a contacted lead to new."
    )
    expect(_column(page, "contacted").locator(".board-card", has_text="Boardrefuse")).to_have_count(
        1
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lead-board.png"), full_page=True)
    page.reload()
    expect(_column(page, "contacted").locator(".board-card", has_text="Boardrefuse")).to_have_count(
        1
    )
    assert _status(browser_world, board_agent["refused"]) == "contacted"


def test_a_card_dragged_onto_a_column_moves_there(page: Page, browser_world, board_agent):
    sign_in(page, board_agent["username"])
    page.goto("/leadboard/")
    card = page.locator(".board-card", has_text="Boarddrag")
    card.drag_to(_column(page, "qualified"))
    expect(card).to_contain_text("Boarddrag Mouse is now qualified.")
    expect(_column(page, "qualified").locator(".board-card", has_text="Boarddrag")).to_have_count(1)
    page.reload()
    expect(_column(page, "qualified").locator(".board-card", has_text="Boarddrag")).to_have_count(1)
    assert _status(browser_world, board_agent["dragged"]) == "qualified"
