"""Security headers in a real browser: every answer carries the policy; another site cannot
frame the screens; a script injected without the request's nonce does not run; FAB's Swagger
page (inline script with the nonce) still works. The dashboards, boards, imports and the other
browser tests run under the same policy, and the ``context`` fixture fails any of them whose
pages report a violation."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_screens import sign_in

pytestmark = pytest.mark.browser


def test_login_and_screens_answer_with_the_security_headers(live_server, browser_world):
    for path in ("/login/", "/static/crm/live.js"):
        headers = requests.get(f"{live_server}{path}").headers
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert re.search(r"script-src 'self' 'nonce-[\w-]{16,}'", policy)
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
    first = requests.get(f"{live_server}/login/").headers["Content-Security-Policy"]
    second = requests.get(f"{live_server}/login/").headers["Content-Security-Policy"]
    assert first != second  # a fresh nonce per answer


def test_another_site_cannot_frame_the_screens(browser: Browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text))
    page.set_content(
        f'<iframe id="f" src="{live_server}/login/" width="600" height="400"></iframe>'
    )
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    expect(frame.locator("#loginbox")).to_have_count(0)
    assert any("frame-ancestors" in text for text in blocked), blocked
    context.close()


def test_an_injected_script_without_the_nonce_does_not_run(browser: Browser, live_server):
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.goto("/login/")
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__injected = 1';
                   document.body.appendChild(s);
                   return window.__injected === 1; }"""
    )
    assert ran is False
    # the page's own scripts (FAB's, with the nonce) did run: jQuery is there
    assert page.evaluate("() => typeof window.jQuery") == "function"
    context.close()


def test_swagger_works_under_the_policy(page: Page, browser_world):
    sign_in(page, browser_world.logins["Admin"])
    page.goto("/swagger/v1")
    # the document of every API is large: building and drawing it takes a few seconds here
    expect(page.locator("#swagger-ui .information-container")).to_be_visible(timeout=30_000)
    expect(page.locator("#swagger-ui .opblock-tag").first).to_be_visible()
