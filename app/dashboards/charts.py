"""A chart's numbers and how they are drawn (Plotly, served by the app itself).

A ``Chart`` is what one SQL aggregate answered: one ``Bar`` per category with the value drawn,
the number of records the list behind it shows (``count``) and that list's URL. The same chart
is the table of its report (``columns`` / ``rows``), so the page and the export never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import plotly.io as pio

PLOTLY_CONFIG = {
    "displaylogo": False,  # the logo links to plotly.com
    "showSendToCloud": False,
    "plotlyServerURL": "",
    "typesetMath": False,  # no MathJax
    "topojsonURL": "/dashboards/no-topojson/",  # never the CDN (no map is drawn anyway)
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"],
}
# Navigate to the list behind a bar; the bar's first custom datum is the URL.
CLICK_SCRIPT = """
var chart = document.getElementById('{plot_id}');
chart.on('plotly_click', function (event) {
  var point = event.points && event.points[0];
  var target = point && point.customdata && point.customdata[0];
  if (target) { window.location.assign(target); }
});
"""
COLOURS = ("#2a6f97", "#c8553d", "#588b8b", "#f2a541", "#6d597a", "#8a9a5b", "#3d5a80")


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | Decimal
    """What the bar's height shows (a count, an amount, a percentage)."""
    count: int
    """How many records the list behind the bar shows."""
    url: str | None
    hover: str = ""


@dataclass(frozen=True)
class Chart:
    key: str
    """The report key (``/reports/<key>/export/<fmt>``)."""
    title: str
    value_title: str
    bars: Sequence[Bar]
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    note: str = ""
    orientation: str = "v"
    summary: str = ""
    """A sentence above the chart (e.g. the on-time share)."""
    value_range: tuple[float, float] | None = None
    """Fixed range of the value axis (0-100 for percentages); else from zero to the largest."""
    extra: dict = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return any(bar.count or bar.value for bar in self.bars)


def figure_html(chart: Chart) -> str:
    """The chart as a ``<div>`` and its script; Plotly's JavaScript comes from the app."""
    labels = [bar.label for bar in chart.bars]
    values = [float(bar.value) for bar in chart.bars]
    customdata = [[bar.url or "", bar.count] for bar in chart.bars]
    hover = [bar.hover or f"{bar.label}: {bar.value}" for bar in chart.bars]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(chart.bars))]
    horizontal = chart.orientation == "h"
    trace = {
        "type": "bar",
        "x": values if horizontal else labels,
        "y": labels if horizontal else values,
        "orientation": chart.orientation,
        "customdata": customdata,
        "hovertext": hover,
        "hoverinfo": "text",
        "text": [_short(value) for value in values],
        "textposition": "auto",
        "marker": {"color": colours},
        "name": chart.value_title,
    }
    value_axis = {"title": {"text": chart.value_title}, "rangemode": "tozero"}
    if chart.value_range is not None:
        value_axis["range"] = list(chart.value_range)
    category_axis = {"type": "category", "automargin": True}
    layout = {
        "height": 320,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 60},
        "showlegend": False,
        "font": {"family": "Helvetica, Arial, sans-serif"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": value_axis if horizontal else category_axis,
        "yaxis": {**category_axis, "autorange": "reversed"} if horizontal else value_axis,
        "hoverlabel": {"align": "left"},
    }
    # A plain figure (Plotly's own keys, not validated object by object: building graph
    # objects took half of a dashboard's time); the browser's plotly.js reads the same JSON.
    return pio.to_html(
        {"data": [trace], "layout": layout},
        validate=False,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        config=PLOTLY_CONFIG,
        post_script=CLICK_SCRIPT,
        div_id=f"chart-{chart.key}",
        default_height="320px",
    )


def _short(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
