"""Real-time pacing for media sources that are not paced by a device.

PyAV's ``lavfi`` sources (test pattern, test tone) and a replayed clip produce frames as
fast as they are read; a camera or a sound card delivers them at their own rate. A
``Pacer`` releases one tick per period against the monotonic clock and says how far into
the stream that tick is, which becomes the frame's presentation time. Shared by the
camera's sources (``appliance.hw.camera``) and the test tone (``appliance.hw.audio``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from fractions import Fraction

VIDEO_TIME_BASE = Fraction(1, 90_000)  # RTP's video clock: timestamps need no conversion
RESYNC_AFTER_S = 1.0  # a reader this late (a stalled loop) skips ahead instead of bursting


class Pacer:
    """One tick every ``period_s``; ``await tick()`` returns the tick's stream time in seconds."""

    def __init__(self, period_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.period_s = period_s
        self._clock = clock
        self._start: float | None = None
        self._index = 0
        self._offset_s = 0.0  # stream time before the last ``retime``

    async def tick(self) -> float:
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._index * self.period_s
        if now - due > RESYNC_AFTER_S:  # far behind: restart the schedule from now
            self._index = round((now - self._start) / self.period_s)
            due = self._start + self._index * self.period_s
        elif due > now:
            await asyncio.sleep(due - now)
        self._index += 1
        return self._offset_s + due - self._start

    def retime(self, period_s: float) -> None:
        """Tick every ``period_s`` from the next tick on; stream time goes on unbroken."""
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        if self._start is not None:
            self._start += self._index * self.period_s
            self._offset_s += self._index * self.period_s
            self._index = 0
        self.period_s = period_s


class WallClock:
    """Stream time for device-paced sources: seconds since the first frame."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: float | None = None

    def elapsed(self) -> float:
        now = self._clock()
        if self._start is None:
            self._start = now
        return now - self._start


def video_pts(elapsed_s: float) -> int:
    """A presentation time in ``VIDEO_TIME_BASE`` units."""
    return round(elapsed_s * VIDEO_TIME_BASE.denominator)
