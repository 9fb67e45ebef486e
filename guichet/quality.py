"""A call's quality summary as it travels in the counter's ``call_ended`` event: its keys
(``EventField`` members), their units and the values a server believes (``docs/call-quality.md``
defines each figure).

The counter (``appliance/call/quality.py``) writes them flat into the event's ``data``; the
fleet server reads them back with :func:`read_quality`, which keeps each value that is of the
right type and within its bounds and names every other one, so a bad figure is dropped, said
and never costs the event. A counter from before issue 19 sends none of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from guichet.events import EventField

DAY_S = 86_400.0  # no call lasts a day: a duration beyond is a broken clock
MAX_KBPS = 100_000.0  # 100 Mbit/s: far beyond any counter's uplink
MAX_RTT_MS = 60_000.0  # a minute's round trip is no call at all
MAX_COUNT = 100_000  # freezes or rung steps in one call
RUNG_LABEL = re.compile(r"^[0-9A-Za-z_.-]{1,16}$")  # e.g. ``720p30``, ``360p15``


@dataclass(frozen=True)
class Bound:
    """A number's bounds (inclusive) and whether it must be whole."""

    low: float
    high: float
    whole: bool = False

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and not (isinstance(value, int) or float(value).is_integer()):
            return False
        return math.isfinite(value) and self.low <= value <= self.high


NUMBERS: dict[EventField, Bound] = {
    EventField.MEASURED_S: Bound(0.0, DAY_S),  # from the media first connected to the end
    EventField.VIDEO_KBPS_AVG: Bound(0.0, MAX_KBPS),
    EventField.VIDEO_KBPS_MIN: Bound(0.0, MAX_KBPS),
    EventField.LOSS_PCT: Bound(0.0, 100.0),
    EventField.RTT_MS: Bound(0.0, MAX_RTT_MS),
    EventField.FREEZES: Bound(0, MAX_COUNT, whole=True),
    EventField.FROZEN_S: Bound(0.0, DAY_S),
    EventField.RUNG_STEPS: Bound(0, MAX_COUNT, whole=True),
    EventField.AUDIO_GAPS_PCT: Bound(0.0, 100.0),
}
QUALITY_KEYS: tuple[EventField, ...] = (*NUMBERS, EventField.LOWEST_RUNG)


@dataclass(frozen=True)
class QualityReading:
    """What a server keeps of an event's quality figures, and what it dropped (key: why)."""

    values: dict[EventField, float | int | str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """Whether the event carried a summary at all (valid or not)."""
        return bool(self.values or self.rejected)


def read_quality(data: Mapping[str, object]) -> QualityReading:
    """The quality figures of a ``call_ended`` event's data. A value ``None`` means "not
    measured" (e.g. no receiver report in a short call) and is neither kept nor rejected."""
    values: dict[EventField, float | int | str] = {}
    rejected: dict[str, str] = {}
    for key, bound in NUMBERS.items():
        value = data.get(key)
        if value is None:
            continue
        if bound.accepts(value):
            assert isinstance(value, int | float)  # accepts() says so
            values[key] = int(value) if bound.whole else float(value)
        else:
            rejected[key] = f"not a number within [{bound.low:g}, {bound.high:g}]"
    rung = data.get(EventField.LOWEST_RUNG)
    if isinstance(rung, str) and RUNG_LABEL.match(rung):
        values[EventField.LOWEST_RUNG] = rung
    elif rung is not None:
        rejected[EventField.LOWEST_RUNG] = "not a short rung label such as 720p30"
    return QualityReading(values, rejected)
