"""Charts drawn on the server as SVG by pygal, inlined in the page: no script, no CDN
(`js=[]` keeps pygal from linking its tooltip script), readable without JavaScript.
Each chart has a text table beside it in the page for screen readers and for copying."""
from __future__ import annotations

from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

from core.portfolio import Dashboard

_STYLE = Style(background="transparent", plot_background="transparent",
               foreground="#222", foreground_strong="#111", foreground_subtle="#666",
               colors=("#1f6f50", "#c0392b", "#d68910", "#2e86c1", "#7d3c98"),
               font_family="system-ui, sans-serif", title_font_size=22,
               label_font_size=16, major_label_font_size=16, value_font_size=16)
_COMMON: dict[str, Any] = {"style": _STYLE, "js": [], "disable_xml_declaration": True,
                           "show_legend": False, "width": 600, "height": 360,
                           "explicit_size": False, "margin": 12,
                           "truncate_label": -1}


def _svg(chart: Any) -> Markup:
    return Markup(chart.render(is_unicode=True))


def disbursed_per_week(board: Dashboard, scale: int) -> Markup | None:
    if not board.disbursed_weeks:
        return None
    chart = pygal.Bar(title="Disbursed per week (Ksh)", x_label_rotation=30, **_COMMON)
    weeks = board.disbursed_weeks[-26:]
    chart.x_labels = [monday.strftime("%d/%m") for monday, _, _ in weeks]
    chart.add("disbursed", [amount // scale for _, _, amount in weeks])
    return _svg(chart)


def loans_by_state(board: Dashboard) -> Markup | None:
    if not board.by_state:
        return None
    chart = pygal.HorizontalBar(title="Loans by state", **_COMMON)
    states = sorted(board.by_state.items(), key=lambda kv: -kv[1])
    chart.x_labels = [state for state, _ in states]
    chart.add("loans", [count for _, count in states])
    return _svg(chart)


def portfolio_at_risk(board: Dashboard) -> Markup | None:
    if not board.outstanding:
        return None
    chart = pygal.Bar(title="Portfolio at risk (%)", range=(0, 100), **_COMMON)
    days = sorted(board.at_risk)
    chart.x_labels = [f"PAR{d}" for d in days]
    chart.add("PAR", [round((board.par(d) or 0) * 100, 1) for d in days])
    return _svg(chart)
