"""Browser fixtures: FinCRM served by a real HTTP server (CSRF on, as in production) on a
throw-away SQLite file, one member of staff per role, and Debian's chromium for Playwright."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.extensions import db
from app.security.roles import ROLES
from tests.support import build_app, make_branch, make_lead, make_staff, prepare_schema

CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class BrowserWorld:
    """What the live server holds: the app (for database checks) and who can sign in."""

    app: Flask
    logins: dict[str, str]  # role -> username of one member of staff with only that role
    other_agent_lead: str  # first name of a lead owned by another agent of the same branch


@pytest.fixture(scope="session")
def browser_world(tmp_path_factory) -> Iterator[BrowserWorld]:
    path = tmp_path_factory.mktemp("browser-db") / "fincrm-browser.db"
    app = build_app(f"sqlite:///{path}", WTF_CSRF_ENABLED=True)
    assert app.config["WTF_CSRF_ENABLED"] is True
    prepare_schema(app)
    with app.app_context():
        mumbai = make_branch("MUM")
        make_branch("SYD", tz="Australia/Sydney")
        logins = {
            role: make_staff(role, mumbai, username=f"{role.lower()}.browser").user.username
            for role in ROLES
        }
        other = make_staff("Agent", mumbai, username="agent2.browser")
        make_lead(other, first_name="Otherleadname")
        db.session.commit()
    yield BrowserWorld(app, logins, other_agent_lead="Otherleadname")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(browser_world: BrowserWorld) -> Iterator[str]:
    """Serve the app on a free local port from a daemon thread; yield its base URL."""
    # One access-log line per static file would bury a failure's report; keep warnings.
    access_log = logging.getLogger("werkzeug")
    previous_level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, browser_world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fincrm-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        access_log.setLevel(previous_level)


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    """pytest-playwright gives every browser context this base URL, so page.goto("/login/")."""
    return live_server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));"""


@pytest.fixture
def context(new_context):
    """pytest-playwright's context, failing after 10 s instead of 30 s when something is missing;
    every page of it is watched for Content-Security-Policy violations, and a test whose pages
    had one fails (the screens, Plotly and Swagger must all work under the policy)."""
    browser_context = new_context()
    browser_context.set_default_timeout(10_000)
    violations: list[str] = []
    browser_context.add_init_script(REPORT_CSP_VIOLATIONS)

    def watch(message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            violations.append(f"{message.page.url if message.page else '?'}: {text}")

    browser_context.on("console", watch)
    yield browser_context
    assert not violations, "\n".join(violations)
