"""Charts as server-rendered inline SVG: no JavaScript chart library.

Python computes the geometry, one template macro (``_chart.html``) draws it. Two shapes share
the frame (plot area, value ticks, nice scales):

- history lines for a counter's page: samples averaged by ``health.downsample`` into at most
  ``BUCKETS`` points (a week of 30-second telemetry becomes a few hundred), placed by time
  across the window; points too far apart are not joined, so offline hours show as gaps;
- stacked bars for the statistics page: calls per service (answered / missed / other), the
  satisfaction distribution and the calls of each day of the month.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleet_server.mqtt.health import downsample
from fleet_server.web.format import DISPLAY_TZ, number, short_day

logger = logging.getLogger(__name__)

WIDTH = 760  # SVG user units; the SVG scales to its container
# History lines
HEIGHT = 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 12, 28
BUCKETS = 288  # points across the window: 5 minutes each over 24 h, 35 minutes over 7 days
GAP_BUCKETS = 3  # a hole wider than this many buckets (or than gap_s) breaks the line
WEEKDAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
# Stacked bars
BAR_HEIGHT = 240
BAR_PAD_LEFT, BAR_PAD_BOTTOM = 48, 40
BAR_FILL = 0.7  # share of a category's width a bar takes
Y_TICKS = 4


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


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
class Chart:
    """Geometry the ``chart`` macro draws: polylines (``"x,y x,y …"``) or bars, ticks, and an
    optional limit (lines) or legend (bars)."""

    title: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]  # lines: times, with vertical grid lines; bars: category labels
    empty: bool = True
    bars: bool = False
    lines: list[str] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # bars: (label, css)
    unit: str = ""
    threshold: Tick | None = None
    latest: str = ""
    css_class: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


# --- history lines ----------------------------------------------------------------------


def _nice_range(
    values: Sequence[float], floor_hint: float, ceil_hint: float
) -> tuple[float, float]:
    lo, hi = min([*values, floor_hint]), max([*values, ceil_hint])
    step = _nice_step((hi - lo) / 4 or 1)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _nice_step(raw: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def _x_ticks(start: datetime, end: datetime) -> list[Tick]:
    span = (end - start).total_seconds()
    local_start = start.astimezone(DISPLAY_TZ)
    if span <= 2 * 86_400:
        step = timedelta(hours=6)
        base = local_start.replace(minute=0, second=0, microsecond=0)
        first = base + timedelta(hours=(6 - base.hour % 6) % 6)
        if first < local_start:
            first += step
    else:
        step = timedelta(days=1)
        first = local_start.replace(hour=0, minute=0, second=0, microsecond=0) + step
    ticks, t = [], first
    while t < end:
        x = PAD_LEFT + (t - start).total_seconds() / span * (WIDTH - PAD_LEFT - PAD_RIGHT)
        label = t.strftime("%H:%M") if step < timedelta(days=1) else short_day(t, WEEKDAYS)
        ticks.append(Tick(round(x, 1), label))
        t += step
    return ticks


def build_chart(
    title: str,
    unit: str,
    samples: Sequence[tuple[datetime, float | None]],
    start: datetime,
    end: datetime,
    *,
    floor_hint: float,
    ceil_hint: float,
    threshold: float | None = None,
    digits: int = 1,
    gap_s: float = 0.0,
    css_class: str = "",
) -> Chart:
    """Downsample and scale one series into a chart's geometry."""
    points = downsample(samples, BUCKETS)
    values = [v for _, v in points]
    limits = [threshold] if threshold is not None else []
    lo, hi = _nice_range(values + limits, floor_hint, ceil_hint)
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def y_of(v: float) -> float:
        return round(PAD_TOP + (hi - v) / (hi - lo) * plot_h, 1)

    lines = _polylines(points, start, end, y_of, gap_s)
    step = (hi - lo) / 4
    y_ticks = [
        Tick(y_of(lo + k * step), number(lo + k * step, digits=_tick_digits(step)))
        for k in range(5)
    ]
    latest_value = next((v for _, v in reversed(samples) if v is not None), None)
    return Chart(
        title=title,
        unit=unit,
        lines=lines,
        x_ticks=_x_ticks(start, end),
        y_ticks=y_ticks,
        threshold=Tick(y_of(threshold), number(threshold, unit)) if threshold is not None else None,
        latest=number(latest_value, unit, digits),
        empty=not points,
        css_class=css_class,
    )


def _polylines(
    points: Sequence[tuple[datetime, float]],
    start: datetime,
    end: datetime,
    y_of: Callable[[float], float],
    gap_s: float,
) -> list[str]:
    """SVG ``points`` strings, one per run of samples without an outage between them."""
    span_s = (end - start).total_seconds()
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    # Consecutive points further apart than this are not joined: the gap shows an outage.
    max_gap_s = max(GAP_BUCKETS * span_s / BUCKETS, gap_s)
    lines: list[str] = []
    current: list[str] = []
    previous: datetime | None = None
    for at, value in points:
        if previous is not None and (at - previous).total_seconds() > max_gap_s and current:
            lines.append(" ".join(current))
            current = []
        x = round(PAD_LEFT + min(max((at - start).total_seconds() / span_s, 0), 1) * plot_w, 1)
        current.append(f"{x},{y_of(value)}")
        previous = at
    if current:
        lines.append(" ".join(current))
    # A lone point draws nothing as a polyline: widen it to a short dash.
    return [ln if " " in ln else _dash(ln) for ln in lines]


def _tick_digits(step: float) -> int:
    return 0 if float(step).is_integer() else (1 if (step * 10).is_integer() else 2)


def _dash(point: str) -> str:
    x, y = (float(p) for p in point.split(","))
    return f"{x - 2},{y} {x + 2},{y}"


# --- stacked bars -----------------------------------------------------------------------


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
) -> Chart:
    """One bar per category, its series stacked bottom to top in the given order."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    plot_w = width - BAR_PAD_LEFT - PAD_RIGHT
    plot_h = BAR_HEIGHT - PAD_TOP - BAR_PAD_BOTTOM
    slot = plot_w / max(len(categories), 1)
    bar_w = round(slot * BAR_FILL, 1)

    def y_of(v: float) -> float:
        return round(PAD_TOP + (top - v) / top * plot_h, 1)

    rects: list[Rect] = []
    labels: list[Tick] = []
    for i, category in enumerate(categories):
        x = round(BAR_PAD_LEFT + slot * i + (slot - bar_w) / 2, 1)
        base = 0
        for s in series:
            value = s.values[i]
            if value:
                y = y_of(base + value)
                h = round(y_of(base) - y, 1)
                rects.append(Rect(x, y, bar_w, h, s.css, f"{category} — {s.name} : {value}"))
            base += value
        if i % label_every == 0:
            labels.append(Tick(round(BAR_PAD_LEFT + slot * (i + 0.5), 1), category))
    step = top // Y_TICKS
    return Chart(
        title=title,
        bars=True,
        rects=rects,
        x_ticks=labels,
        y_ticks=[Tick(y_of(k * step), str(k * step)) for k in range(Y_TICKS + 1)],
        legend=[(s.name, s.css) for s in series],
        empty=not any(totals),
        css_class=css_class,
        width=width,
        height=BAR_HEIGHT,
        plot_left=BAR_PAD_LEFT,
        plot_right=width - PAD_RIGHT,
        plot_bottom=BAR_HEIGHT - BAR_PAD_BOTTOM,
    )
