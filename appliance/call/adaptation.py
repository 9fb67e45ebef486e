"""What the counter's video sends follows what the line carries: the ladder and its climber.

The agent's Chromium, as the receiver of an aiortc answerer, estimates the path's capacity
itself and sends it back as REMB (aiortc answers with ``goog-remb`` and ``abs-send-time``,
never ``transport-cc``: seen four REMB and one receiver report a second). Its estimate is
the rate it wants us to send: it starts low (~200 kbit/s whatever the line), climbs by
~8 %/s while its delay detector sees no queue growing, and falls to 85 % of what it
receives when it does (overuse). So the climber reads:

- **congestion**: the REMB falls (by more than ``REMB_DROP``) while it is not far above what
  we send, or more than ``LOSS_CONGESTED`` of our packets were lost over the last second
  (``appliance.call.feedback`` counts them from the receiver reports), or the round trip is
  ``QUEUE_DELAY_S`` above its minimum (a modem's buffer filling). Then it steps down at
  once — to the highest rung that fits ``REMB_HEADROOM`` × REMB, at least one — and bars
  the rung it left for a while (``BAR_S``, doubled if that rung fails again within
  ``BAR_MEMORY_S``), so a steady line is not probed every few seconds;
- **room**: no congestion for ``CLIMB_AFTER_S``: one rung up, unless that rung is barred,
  and — above the rung the line has already *held* (``HELD_S`` without congestion) — only
  once the REMB says the rung fits (``REMB_CLIMB``). Back up to a held rung it does not wait
  for the REMB: after a cut, Chromium's estimate climbs 8 %/s and would keep the video
  down for tens of seconds on a line that is back; a rung that no longer fits shows as
  congestion within a second, is undone, and stops counting as held.

Audio has priority: every rung leaves ``AUDIO_RESERVE_BPS`` for the voice (Opus and its
packet overhead); when even the lowest rung does not fit, the video stays there and the
voice goes on.

Pure: the clock is injected; ``RungClimber`` takes the feedback and calls ``on_change``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from appliance.hw.ports import VideoRung

logger = logging.getLogger(__name__)

# Each rung about 1.4× the next: one step up is a probe the line can absorb for a second.
LADDER: tuple[VideoRung, ...] = (
    VideoRung("720p30", 1280, 720, 30, 1_500_000),
    VideoRung("540p30", 960, 540, 30, 1_000_000),
    VideoRung("360p30", 640, 360, 30, 700_000),
    VideoRung("360p20", 640, 360, 20, 480_000),
    VideoRung("360p15", 640, 360, 15, 340_000),
    VideoRung("270p15", 480, 270, 15, 240_000),
    VideoRung("180p10", 320, 180, 10, 160_000),
)
AUDIO_RESERVE_BPS = 50_000  # Opus at ~28 kbit/s + 50 packets/s of RTP/UDP/IP/SRTP headers
START_BPS = 500_000  # first rung: its keyframe crosses a 1 Mbit/s line in ~0.1 s
REMB_DROP = 0.05  # Chromium lowers its estimate only on overuse
REMB_NEAR = 1.3  # …and a drop far above what we send is not about us
REMB_HEADROOM = 0.85  # step down to what fits this share of the new estimate
LOSS_CONGESTED = 0.10  # a rural line loses a few % at random: that is not congestion
QUEUE_DELAY_S = 0.15  # round trip this far above its minimum: a buffer is filling
DOWN_SPACING_S = 1.0  # after a step down, let the queue drain before judging again
CLIMB_AFTER_S = 2.0  # this long without congestion (and since the last step): one up…
RECLIMB_AFTER_S = 1.5  # …or this long, back up towards the rung the line has held
REMB_CLIMB = 0.9  # above the held rung: only when the REMB covers this share of its cost
HELD_S = 3.0  # a rung sent this long without congestion is one the line can hold…
HELD_FAILURES = 6  # …until it fails this often within BAR_MEMORY_S (~45 s of failing)
BAR_S = 6.0  # a rung left for congestion is not tried again for this long (a held one
BAR_MAX_S = 48.0  # always; above, doubled each time it fails again within BAR_MEMORY_S)
BAR_MEMORY_S = 60.0
DOCUMENT_ROOM_BPS = 250_000  # while a scan crosses the uplink, the video (and voice) take
# at most this: a 150 KB page then crosses a 1 Mbit/s line in ~1.6 s instead of ~2.5 s


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """What the counter's camera was configured for: the top of its ladder."""

    size: tuple[int, int]
    fps: int


def ladder_for(
    size: tuple[int, int], fps: int, ladder: Sequence[VideoRung] = LADDER
) -> list[VideoRung]:
    """The rungs a camera of ``size`` at ``fps`` can send (never upscaled), best first."""
    width, height = size
    rungs = [r for r in ladder if r.width <= width and r.height <= height and r.fps <= fps]
    return rungs or [ladder[-1]]


def consumption_bps(rung: VideoRung) -> int:
    """What sending at ``rung`` costs the line, voice included."""
    return rung.bitrate_bps + AUDIO_RESERVE_BPS


@dataclass
class _Bar:
    until: float
    length_s: float
    failures: list[float]  # when it failed, within BAR_MEMORY_S


class RungClimber:
    """Chooses the rung from the receiver's feedback; ``on_change(rung)`` on every step."""

    def __init__(
        self,
        ladder: Sequence[VideoRung],
        *,
        on_change: Callable[[VideoRung], None],
        start_bps: int = START_BPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ladder:
            raise ValueError("an empty ladder")
        self._ladder = list(ladder)
        self._on_change = on_change
        self._clock = clock
        fitting = [i for i, r in enumerate(self._ladder) if consumption_bps(r) <= start_bps]
        self._index = fitting[0] if fitting else len(self._ladder) - 1
        now = clock()
        self._changed_at = now
        self._down_at = now - DOWN_SPACING_S  # no step down yet
        self._calm_since = now
        self._remb: int | None = None
        self._min_rtt_s: float | None = None
        self._bars: dict[int, _Bar] = {}
        self._held = self._index  # the best rung the line has held (lower index: better)
        self._ceiling = 0  # the best rung allowed now (a document crossing lowers it)
        self.steps = 0  # rung changes this call
        self.lowest = self.rung

    @property
    def rung(self) -> VideoRung:
        return self._ladder[self._index]

    @property
    def last_remb_bps(self) -> int | None:
        """The receiver's latest estimate of the path (None: it sent none yet)."""
        return self._remb

    # --- feedback ------------------------------------------------------------------------

    def remb(self, bitrate_bps: int) -> None:
        logger.debug("REMB %d kbit/s at %s", bitrate_bps // 1000, self.rung.name)
        previous, self._remb = self._remb, bitrate_bps
        if previous is None or bitrate_bps >= previous * (1 - REMB_DROP):
            self._maybe_climb()
        elif bitrate_bps < consumption_bps(self.rung) * REMB_NEAR:
            self._congested(f"REMB {previous // 1000} → {bitrate_bps // 1000} kbit/s")

    def loss(self, fraction: float) -> None:
        logger.debug("loss %.1f %%", fraction * 100)
        if fraction > LOSS_CONGESTED:
            self._congested(f"{fraction:.0%} lost")
        else:
            self._maybe_climb()

    def round_trip(self, rtt_s: float) -> None:
        logger.debug("round trip %.0f ms", rtt_s * 1000)
        if self._min_rtt_s is None or rtt_s < self._min_rtt_s:
            self._min_rtt_s = rtt_s
        if rtt_s - self._min_rtt_s > QUEUE_DELAY_S:
            self._congested(f"round trip {rtt_s * 1000:.0f} ms")
        else:
            self._maybe_climb()

    def make_room(self, active: bool) -> None:
        """A document starts (``True``) or stops (``False``) crossing the uplink: the video
        steps down to leave it room, and climbs back afterwards towards the rung the line
        held (that step down was no congestion: nothing is barred)."""
        fitting = [i for i, r in enumerate(self._ladder) if consumption_bps(r) <= DOCUMENT_ROOM_BPS]
        self._ceiling = (fitting[0] if fitting else len(self._ladder) - 1) if active else 0
        if active and self._index < self._ceiling:
            logger.info(
                "a document crosses the line: video down to %s", self._ladder[self._ceiling].name
            )
            self._step(self._ceiling, self._clock())

    # --- steps ---------------------------------------------------------------------------

    def _congested(self, why: str) -> None:
        now = self._clock()
        self._note_held(now)  # it was held until now, if long enough
        self._calm_since = now
        if now - self._down_at < DOWN_SPACING_S or self._index == len(self._ladder) - 1:
            return  # the last step down is still draining the queue, or nowhere to go
        target = self._index + 1
        if self._remb is not None:  # as far down as the new estimate says
            budget = self._remb * REMB_HEADROOM
            while target < len(self._ladder) - 1 and consumption_bps(self._ladder[target]) > budget:
                target += 1
        self._bar(self._index, now)
        logger.info("congestion (%s): video down to %s", why, self._ladder[target].name)
        self._down_at = now
        self._step(target, now)

    def _note_held(self, now: float) -> None:
        if now - max(self._calm_since, self._changed_at) >= HELD_S and self._index < self._held:
            self._held = self._index

    def _maybe_climb(self) -> None:
        now = self._clock()
        self._note_held(now)
        calm_s = now - max(self._calm_since, self._changed_at)
        target = self._index - 1
        if target < self._ceiling:
            return  # a document is crossing the line
        wait_s = RECLIMB_AFTER_S if target >= self._held else CLIMB_AFTER_S
        if self._index == 0 or calm_s < wait_s:
            return
        bar = self._bars.get(target)
        if bar is not None and now < bar.until:
            return
        cost = consumption_bps(self._ladder[target])
        if target < self._held and (self._remb is None or self._remb < cost * REMB_CLIMB):
            return  # new ground: only with the receiver's estimate (its first within ~1 s)
        logger.info("room on the line: video up to %s", self._ladder[target].name)
        self._step(target, now)

    def _bar(self, index: int, now: float) -> None:
        bar = self._bars.get(index)
        failures = [t for t in (bar.failures if bar else []) if now - t < BAR_MEMORY_S]
        failures.append(now)
        if index >= self._held and len(failures) >= HELD_FAILURES:
            self._held = index + 1  # the line no longer holds it
            logger.info("the line no longer holds %s", self._ladder[index].name)
        length = BAR_S
        if index < self._held and bar is not None and len(failures) > 1:
            length = min(bar.length_s * 2, BAR_MAX_S)  # new ground that failed again
        self._bars[index] = _Bar(until=now + length, length_s=length, failures=failures)

    def _step(self, index: int, now: float) -> None:
        self._index = index
        self._changed_at = now
        self.steps += 1
        if self.rung.bitrate_bps < self.lowest.bitrate_bps:
            self.lowest = self.rung
        self._on_change(self.rung)
