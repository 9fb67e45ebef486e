"""Stacked bar charts for the statistics page, as geometry a template draws in inline SVG.

Same approach as :mod:`fleet_server.web.charts` (server-rendered, no JavaScript): the
template gets rectangles, ticks and a legend. Used for calls per service (answered /
missed / other), the satisfaction distribution and the calls of each day of the month.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleet_server.web.charts import Tick

logger = logging.getLogger(__name__)

WIDTH = 760  # SVG user units; the SVG scales to its container
HEIGHT = 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 40
BAR_FILL = 0.7  # share of a category's width a bar takes
Y_TICKS = 4


@dataclass(frozen=True)
class Series:
    name: str  # legend label, French
    css: str  # bar colour class (statistics.css)
    values: Sequence[int]  # one per category


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str  # the SVG tooltip: "Caf — répondus : 12"


@dataclass(frozen=True)
class BarChart:
    title: str
    rects: list[Rect]
    x_labels: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]]  # (label, css)
    empty: bool
    css_class: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 × 10ⁿ multiple of ``Y_TICKS`` at least ``value`` (at least 4)."""
    raw = max(value, 1) / Y_TICKS
    magnitude = 10 ** max(0, math.floor(math.log10(raw)))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return int(step * Y_TICKS)


def stacked_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    label_every: int = 1,
    css_class: str = "",
    width: int = WIDTH,
) -> BarChart:
    """One bar per category, its series stacked bottom to top in the given order."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(categories), 1)
    bar_w = round(slot * BAR_FILL, 1)

    def y_of(v: float) -> float:
        return round(PAD_TOP + (top - v) / top * plot_h, 1)

    rects: list[Rect] = []
    labels: list[Tick] = []
    for i, category in enumerate(categories):
        x = round(PAD_LEFT + slot * i + (slot - bar_w) / 2, 1)
        base = 0
        for s in series:
            value = s.values[i]
            if value:
                y = y_of(base + value)
                h = round(y_of(base) - y, 1)
                rects.append(Rect(x, y, bar_w, h, s.css, f"{category} — {s.name} : {value}"))
            base += value
        if i % label_every == 0:
            labels.append(Tick(round(PAD_LEFT + slot * (i + 0.5), 1), category))
    step = top // Y_TICKS
    y_ticks = [Tick(y_of(k * step), str(k * step)) for k in range(Y_TICKS + 1)]
    return BarChart(
        title=title,
        rects=rects,
        x_labels=labels,
        y_ticks=y_ticks,
        legend=[(s.name, s.css) for s in series],
        empty=not any(totals),
        css_class=css_class,
        width=width,
        plot_right=width - PAD_RIGHT,
    )
