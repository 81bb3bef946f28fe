"""Dashboards in a real browser with the internet shut out: a branch manager opens each
dashboard, every chart is drawn from data (Plotly served by the app itself), each chart's
picture is not blank, and a click on a bar lands on the list it counts."""

from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from app.dashboards.catalogue import DASHBOARDS
from app.extensions import db
from tests.browser.test_screens import sign_in
from tests.test_dashboards import build_world

pytestmark = pytest.mark.browser

TRACES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
  id: el.id,
  traces: (el.data || []).map(t => ({
    points: (t.x || []).length,
    values: (t.orientation === 'h' ? t.x : t.y) || [],
    customdata: t.customdata || [],
  })),
}))"""


@pytest.fixture(scope="module")
def dashboard_world(browser_world):
    with browser_world.app.app_context():
        world = build_world(currencies=("SGD", "GBP", "JPY"))
        db.session.remove()
    return world


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


def _not_blank(png: bytes) -> bool:
    """More than a couple of colours in the picture (a blank or failed chart is one or two)."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 16) or [(0, None)] * (1 << 16)
    return len(colours) > 8


def test_manager_sees_every_dashboard_drawn_offline(
    page: Page, dashboard_world, offline, tmp_path
) -> None:
    sign_in(page, dashboard_world.username("manager_syd"))
    for dashboard in DASHBOARDS:
        page.goto(f"/dashboards/{dashboard.key}/")
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
    page: Page, dashboard_world, offline
) -> None:
    sign_in(page, dashboard_world.username("manager_syd"))
    for dashboard, key in (("sales", "lead-funnel"), ("billing", "invoice-ageing")):
        page.goto(f"/dashboards/{dashboard}/")
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
