"""Dashboards in a real browser with the internet shut out: a branch manager opens each
dashboard, every chart is drawn from data (Plotly served by the app itself), each chart's
picture is not blank, and a click on a bar lands on the list it counts.

The records every desk needs would disturb the other browser tests' shared database (they count
their own rows), so this module serves its own app and database on another local port.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from app.dashboards.catalogue import DASHBOARDS
from app.extensions import db
from tests.support import PASSWORD, build_app, prepare_schema
from tests.test_dashboards import World, build_world

pytestmark = pytest.mark.browser

TRACES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
  id: el.id,
  traces: (el.data || []).map(t => ({
    points: (t.x || []).length,
    values: (t.orientation === 'h' ? t.x : t.y) || [],
    customdata: t.customdata || [],
  })),
}))"""


def _sydney_campaign_and_support_cases(world: World) -> None:
    """So the sales dashboard's campaign chart and the support dashboard's charts have bars to
    draw for the Sydney manager: Sydney's leads came through a campaign, and its client has
    cases."""
    from app.clients.models import Client
    from app.leads.models import Lead
    from app.support.services import open_case
    from tests.test_campaigns import make_campaign, make_segment

    campaign = make_campaign(make_segment(), name="Spring funds")
    for lead in db.session.scalars(select(Lead).where(Lead.branch_id == world.syd)):
        lead.campaign_id = campaign.id
    client = db.session.scalars(select(Client).where(Client.branch_id == world.syd)).first()
    for priority in ("urgent", "normal"):
        open_case(client.id, f"A {priority} question", priority=priority)
    db.session.commit()


@pytest.fixture(scope="module")
def dashboards_site(tmp_path_factory) -> Iterator[tuple[str, World]]:
    """Its own app (CSRF on), database and server; yields the base URL and who is in it."""
    path = tmp_path_factory.mktemp("dashboards-db") / "dashboards.db"
    app = build_app(f"sqlite:///{path}", WTF_CSRF_ENABLED=True)
    prepare_schema(app)
    with app.app_context():
        world = build_world()
        _sydney_campaign_and_support_cases(world)
        db.session.remove()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboards-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", world
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def offline(page: Page):
    """Every request not to 127.0.0.1 is refused and recorded."""
    attempted: list[str] = []

    def only_local(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    return attempted


def sign_in(page: Page, site: str, username: str) -> None:
    page.goto(f"{site}/login/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("#loginbox")).to_have_count(0)


def _not_blank(png: bytes) -> bool:
    """More than a couple of colours in the picture (a blank or failed chart is one or two)."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 16) or [(0, None)] * (1 << 16)
    return len(colours) > 8


def test_manager_sees_every_dashboard_drawn_offline(
    page: Page, dashboards_site, offline, tmp_path
) -> None:
    site, world = dashboards_site
    sign_in(page, site, world.username("manager_syd"))
    for dashboard in DASHBOARDS:
        page.goto(f"{site}/dashboards/{dashboard.key}/")
        expect(page.locator(".js-plotly-plot")).to_have_count(len(dashboard.charts))
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible()
        plots = page.evaluate(TRACES)
        assert [p["id"] for p in plots] == [f"chart-{spec.key}" for spec in dashboard.charts]
        for plot in plots:
            assert plot["traces"], plot["id"]
            assert any(t["points"] and any(t["values"]) for t in plot["traces"]), plot
        page.screenshot(path=str(tmp_path / f"{dashboard.key}-dashboard.png"), full_page=True)
        for spec in dashboard.charts:
            element = page.locator(f"#chart-{spec.key}")
            png = element.screenshot(path=str(tmp_path / f"{spec.key}.png"))
            assert _not_blank(png), spec.key
    assert offline == [], f"requests to the internet: {offline}"


def test_clicking_a_bar_opens_the_list_with_that_count(
    page: Page, dashboards_site, offline
) -> None:
    site, world = dashboards_site
    sign_in(page, site, world.username("manager_syd"))
    for dashboard, key in (("sales", "lead-funnel"), ("billing", "invoice-ageing")):
        page.goto(f"{site}/dashboards/{dashboard}/")
        plot = page.locator(f"#chart-{key}")
        expect(plot.locator(".main-svg").first).to_be_visible()
        customdata = page.evaluate(
            "key => document.getElementById('chart-' + key).data[0].customdata", key
        )
        index = max(range(len(customdata)), key=lambda i: customdata[i][1])
        url, count = customdata[index]
        assert count > 0
        box = plot.locator(".bars .point").nth(index).bounding_box()
        with page.expect_navigation():
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.url.endswith(url), (page.url, url)
        expect(page.get_by_text(re.compile(rf"Record Count:\s*{count}\b"))).to_be_visible()
    assert offline == []
