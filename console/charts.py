"""Charts drawn on the server as SVG by pygal, inlined in the page: no script, no CDN
(`js=[]` keeps pygal from linking its tooltip script), readable without JavaScript.
Each chart has a text table beside it in the page for screen readers and for copying."""
from __future__ import annotations

from functools import lru_cache
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


# pygal takes ~20 ms a chart; the same figures draw the same chart, so each chart is
# kept by its figures (a few dozen filters' worth) and drawn again only when they change.
@lru_cache(maxsize=64)
def _bars(kind: str, title: str, labels: tuple[str, ...], values: tuple[float, ...],
          extra: tuple[tuple[str, Any], ...]) -> Markup:
    chart = getattr(pygal, kind)(title=title, **_COMMON, **dict(extra))
    chart.x_labels = list(labels)
    chart.add(title, list(values))
    return _svg(chart)


def disbursed_per_week(board: Dashboard, scale: int) -> Markup | None:
    if not board.disbursed_weeks:
        return None
    weeks = board.disbursed_weeks[-26:]
    return _bars("Bar", "Disbursed per week (Ksh)",
                 tuple(monday.strftime("%d/%m") for monday, _, _ in weeks),
                 tuple(amount // scale for _, _, amount in weeks), (("x_label_rotation", 30),))


def loans_by_state(board: Dashboard) -> Markup | None:
    if not board.by_state:
        return None
    states = sorted(board.by_state.items(), key=lambda kv: -kv[1])
    return _bars("HorizontalBar", "Loans by state", tuple(state for state, _ in states),
                 tuple(count for _, count in states), ())


def portfolio_at_risk(board: Dashboard) -> Markup | None:
    if not board.outstanding:
        return None
    days = sorted(board.at_risk)
    return _bars("Bar", "Portfolio at risk (%)", tuple(f"PAR{d}" for d in days),
                 tuple(round((board.par(d) or 0) * 100, 1) for d in days),
                 (("range", (0, 100)),))
