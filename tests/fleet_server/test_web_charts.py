"""The SVG chart geometry: downsampled, placed by time, broken where samples stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet_server.web.charts import BUCKETS, HEIGHT, PAD_BOTTOM, PAD_TOP, build_chart

END = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=24)


def _xs(line: str) -> list[float]:
    return [float(p.split(",")[0]) for p in line.split()]


def test_an_outage_breaks_the_line() -> None:
    samples = [
        (START + timedelta(seconds=30 * i), 50.0 + i % 10)
        for i in range(2880)
        if not 1000 <= i < 1400  # 3 h 20 without telemetry
    ]
    chart = build_chart(
        "t", "°C", samples, START, END, floor_hint=30, ceil_hint=70, threshold=80, gap_s=90
    )
    assert not chart.empty
    assert len(chart.lines) == 2
    assert sum(len(line.split()) for line in chart.lines) <= BUCKETS
    first, second = (_xs(line) for line in chart.lines)
    assert first == sorted(first)
    assert first[-1] < second[0]
    assert chart.threshold is not None
    assert PAD_TOP <= chart.threshold.pos <= HEIGHT - PAD_BOTTOM
    assert chart.latest == "59,0 °C"
    assert [t.label for t in chart.x_ticks] == ["18:00", "00:00", "06:00", "12:00"][
        : len(chart.x_ticks)
    ]


def test_no_samples_is_an_empty_chart() -> None:
    chart = build_chart("t", "", [], START, END, floor_hint=0, ceil_hint=1)
    assert chart.empty
    assert chart.lines == []
    assert chart.latest == "—"


def test_a_week_is_labelled_by_day() -> None:
    start = END - timedelta(days=7)
    chart = build_chart("t", "", [(END, 0.5)], start, END, floor_hint=0, ceil_hint=1)
    assert len(chart.x_ticks) == 7
    assert chart.x_ticks[0].label.startswith(
        ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
    )
    assert len(chart.lines) == 1  # a lone point is drawn as a short dash
