"""The call's quality as the counter measures it, summed up at the call's end (issue 19, item 7).

One ``CallQualityMeter`` per call (``CallPeer.meter``), fed three ways:

- ``watch(pc)``: each ``RTCPeerConnection`` of the call (the first, and the fresh one an ICE
  restart makes) is sampled every ``SAMPLE_S`` through aiortc's ``getStats()``: our video
  sender's ``outbound-rtp`` bytes, and the ``remote-inbound-rtp`` the agent's RTCP receiver
  reports give (packets lost and received, round trip). Each connection keeps its own tally,
  so a replaced connection's last figures stay in the call's summary.
- ``shown(show)`` / ``heard(play)`` wrap what the receive pumps hand the agent's frames to:
  the agent's video reaching the screen (freezes) and the agent's audio (gaps in its RTP
  timestamps: audio that never came, which a browser would have concealed).
- ``note_rung(label)``: the bitrate adaptation's resolution/framerate rung now in use.

``summary()`` is synchronous (the machine reads it before releasing the media) and uses the
latest sample, at most ``SAMPLE_S`` old. Its keys are ``guichet.quality``'s, defined in
``docs/call-quality.md``. The accounting classes below are pure: they take the time as an
argument, so a synthetic timeline tests them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction

import av
from aiortc import RTCPeerConnection
from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats, RTCStatsReport

from guichet.contract import Scalar
from guichet.events import EventField

logger = logging.getLogger(__name__)

FREEZE_S = 0.5  # the agent's video is frozen when no new frame comes for longer than this
SAMPLE_S = 1.0  # a connection's stats are read this often
MIN_WINDOW_S = 5.0  # the minimum bitrate is the lowest over this much connected time: a 1 s
# window would measure the gap between two keyframes, not the line
AUDIO_SLACK = 0.5  # of a frame: timestamps further apart than one frame and this are a gap
RTP_WRAP = 1 << 32  # RTP timestamps (aiortc's decoded audio pts) wrap here
RUNG = re.compile(r"^(\d+)p(\d+)?")  # "720p30" → (720, 30): lower height, then framerate


class FreezeMeter:
    """Freezes of the agent's video on the counter's screen: each gap of more than
    ``FREEZE_S`` between two frames (or from the last frame to now) is one freeze, frozen
    for its whole length. The clock starts at the first frame (not before: the time to the
    first frame is the call's start, not a freeze)."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._count = 0
        self._frozen_s = 0.0

    def frame(self, now: float) -> None:
        if self._last is not None and now - self._last > FREEZE_S:
            self._count += 1
            self._frozen_s += now - self._last
        self._last = now

    def totals(self, now: float) -> tuple[int, float]:
        """(freezes, frozen seconds) up to ``now``, a freeze still going on included."""
        count, frozen = self._count, self._frozen_s
        if self._last is not None and now - self._last > FREEZE_S:
            count, frozen = count + 1, frozen + now - self._last
        return count, frozen


class AudioGaps:
    """Audio of the agent that never came: a frame whose RTP timestamp starts later than the
    previous frame's end by more than ``AUDIO_SLACK`` of a frame leaves a gap of that much
    (capped by the time actually waited, so a timestamp reset is not an hour of silence).
    Timestamps going backwards (a new stream) restart the count from that frame."""

    def __init__(self) -> None:
        self._next_pts: int | None = None
        self._last_at = 0.0
        self.missing_s = 0.0

    def frame(
        self, now: float, pts: int | None, samples: int, rate: int, time_base: Fraction | None
    ) -> None:
        """A frame of ``samples`` at ``rate`` Hz stamped ``pts`` (in ``time_base``)."""
        if pts is None or time_base is None or samples <= 0 or rate <= 0:
            return  # aiortc's decoder always stamps them; anything else is not measured
        duration_pts = round(samples / (rate * time_base))
        if self._next_pts is not None:
            jump = (pts - self._next_pts) % RTP_WRAP
            if jump >= RTP_WRAP // 2:
                jump -= RTP_WRAP  # earlier than expected: overlap or a new stream
            if jump > duration_pts * AUDIO_SLACK:
                self.missing_s += min(float(jump * time_base), max(0.0, now - self._last_at))
        self._next_pts = (pts + duration_pts) % RTP_WRAP
        self._last_at = now


@dataclass(frozen=True)
class RemoteReport:
    """What the agent's receiver last said of one of our streams (cumulative)."""

    lost: int
    received: int
    rtt_s: float | None


@dataclass(frozen=True)
class StatsSample:
    video_bytes: int  # sent on this connection so far
    reports: dict[str, RemoteReport]  # by kind ("audio", "video")


def read_report(report: RTCStatsReport) -> StatsSample:
    """The figures the meter uses from aiortc's stats (W3C names stay in this function)."""
    video_bytes = 0
    reports: dict[str, RemoteReport] = {}
    for stats in report.values():
        if isinstance(stats, RTCOutboundRtpStreamStats) and stats.kind == "video":
            video_bytes += stats.bytesSent
        elif isinstance(stats, RTCRemoteInboundRtpStreamStats):
            reports[stats.kind] = RemoteReport(
                lost=max(0, stats.packetsLost),
                received=max(0, stats.packetsReceived),
                rtt_s=stats.roundTripTime,
            )
    return StatsSample(video_bytes, reports)


class ConnectionTally:
    """One peer connection's figures, from its successive samples. An interval between two
    samples counts (its time and the video sent in it) when the connection is connected at
    its end: not the dead time before ICE declares a connection failed, nor a closed one."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None  # time, video bytes
        self.connected_s = 0.0
        self.video_bytes = 0
        self.min_kbps: float | None = None  # over MIN_WINDOW_S of connected time
        self._window: deque[tuple[float, int]] = deque()
        self.reports: dict[str, RemoteReport] = {}
        self.rtt_sum_s = 0.0
        self.rtt_samples = 0

    def add(self, now: float, sample: StatsSample, connected: bool) -> None:
        if self._last is not None:
            at, sent_before = self._last
            if connected:
                sent = max(0, sample.video_bytes - sent_before)
                self.connected_s += now - at
                self.video_bytes += sent
                self._slide(now - at, sent)
            else:
                self._window.clear()
        self._last = (now, sample.video_bytes)
        self.reports.update(sample.reports)
        rtts = [r.rtt_s for r in sample.reports.values() if r.rtt_s is not None]
        if connected and rtts:
            self.rtt_sum_s += sum(rtts) / len(rtts)
            self.rtt_samples += 1

    def _slide(self, dt: float, sent: int) -> None:
        window = self._window
        window.append((dt, sent))
        while len(window) > 1 and sum(d for d, _ in window) - window[0][0] >= MIN_WINDOW_S:
            window.popleft()
        span = sum(d for d, _ in window)
        if span >= MIN_WINDOW_S:
            kbps = sum(b for _, b in window) * 8 / span / 1000
            self.min_kbps = kbps if self.min_kbps is None else min(self.min_kbps, kbps)


class Rungs:
    """The video's resolution/framerate rungs: each change is a step; the lowest rung is the
    smallest height, then framerate (``720p30`` > ``540p30`` > ``360p15``); a label of
    another shape is kept as lowest only while no ``<height>p<fps>`` one has been seen."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.steps = 0
        self.lowest: str | None = None

    def note(self, label: str) -> None:
        if label == self.current:
            return
        if self.current is not None:
            self.steps += 1
        self.current = label
        if self.lowest is None or _rank(label) < _rank(self.lowest):
            self.lowest = label


def _rank(label: str) -> tuple[float, float]:
    match = RUNG.match(label)
    if match is None:
        return (float("inf"), float("inf"))
    return (float(match.group(1)), float(match.group(2) or 0))


def figures(
    *,
    measured_s: float,
    tallies: list[ConnectionTally],
    freezes: tuple[int, float],
    audio_missing_s: float,
    rungs: Rungs,
) -> dict[str, Scalar]:
    """The summary's keys; a figure not measured (no receiver report yet…) is left out."""
    connected_s = sum(t.connected_s for t in tallies)
    video_bytes = sum(t.video_bytes for t in tallies)
    lost = sum(r.lost for t in tallies for r in t.reports.values())
    received = sum(r.received for t in tallies for r in t.reports.values())
    rtt_samples = sum(t.rtt_samples for t in tallies)
    minimums = [t.min_kbps for t in tallies if t.min_kbps is not None]
    out: dict[str, Scalar] = {
        EventField.MEASURED_S: round(measured_s, 1),
        EventField.FREEZES: freezes[0],
        EventField.FROZEN_S: round(freezes[1], 1),
        EventField.RUNG_STEPS: rungs.steps,
    }
    if measured_s > 0:
        out[EventField.AUDIO_GAPS_PCT] = round(min(100.0, 100 * audio_missing_s / measured_s), 2)
    if connected_s > 0:
        average = video_bytes * 8 / connected_s / 1000
        out[EventField.VIDEO_KBPS_AVG] = round(average)
        out[EventField.VIDEO_KBPS_MIN] = round(min(minimums) if minimums else average)
    if lost + received > 0:
        out[EventField.LOSS_PCT] = round(100 * lost / (lost + received), 2)
    if rtt_samples:
        rtt_ms = 1000 * sum(t.rtt_sum_s for t in tallies) / rtt_samples
        out[EventField.RTT_MS] = round(rtt_ms)
    if rungs.lowest is not None:
        out[EventField.LOWEST_RUNG] = rungs.lowest
    return out


class CallQualityMeter:
    """The call's meter: see the module's docstring."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sample_s: float = SAMPLE_S
    ) -> None:
        self._clock = clock
        self._sample_s = sample_s
        self._freezes = FreezeMeter()
        self._audio = AudioGaps()
        self._rungs = Rungs()
        self.tallies: list[ConnectionTally] = []  # one per peer connection of the call
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.started_at: float | None = None  # the media first connected
        self.samples = 0  # stats samples taken (tests wait on it)
        self.sampled = asyncio.Event()  # set after each sample

    def watch(self, pc: RTCPeerConnection) -> None:
        """Measure ``pc`` from now on; the connection watched before gets a last sample."""
        tally = ConnectionTally()
        self.tallies.append(tally)
        self._pc = pc
        pc.on("connectionstatechange", lambda: self._state_changed(pc))
        task = asyncio.create_task(self._sample(pc, tally), name="call:quality")
        self._tasks.add(task)
        task.add_done_callback(self._sampling_done)

    def shown(self, show: Callable[[av.VideoFrame], None]) -> Callable[[av.VideoFrame], None]:
        """``show``, noting each of the agent's frames as it reaches the screen."""

        def counted(frame: av.VideoFrame) -> None:
            self._freezes.frame(self._clock())
            show(frame)

        return counted

    def heard(
        self, play: Callable[[av.AudioFrame], Awaitable[None]]
    ) -> Callable[[av.AudioFrame], Awaitable[None]]:
        """``play``, noting each of the agent's audio frames as it is received."""

        async def counted(frame: av.AudioFrame) -> None:
            self._audio.frame(
                self._clock(), frame.pts, frame.samples, frame.sample_rate, frame.time_base
            )
            await play(frame)

        return counted

    def note_rung(self, label: str) -> None:
        """The video now goes at rung ``label`` (``720p30``…): call it with the starting
        rung, then at each change; the same label again is not a step."""
        self._rungs.note(label)

    def summary(self) -> dict[str, Scalar]:
        """The call's figures so far; empty when the media never connected."""
        if self.started_at is None:
            return {}
        now = self._clock()
        return figures(
            measured_s=now - self.started_at,
            tallies=self.tallies,
            freezes=self._freezes.totals(now),
            audio_missing_s=self._audio.missing_s,
            rungs=self._rungs,
        )

    async def close(self) -> None:
        """Stop sampling; the figures stay readable."""
        self._pc = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    # --- internals ----------------------------------------------------------------------

    def _sampling_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("call quality sampling stopped", exc_info=exc)

    def _state_changed(self, pc: RTCPeerConnection) -> None:
        if pc.connectionState == "connected" and self.started_at is None:
            self.started_at = self._clock()

    async def _sample(self, pc: RTCPeerConnection, tally: ConnectionTally) -> None:
        while True:
            watched = pc is self._pc
            try:
                report = await pc.getStats()
            except Exception:  # a connection torn down under us: its last sample is taken
                logger.debug("stats of a closed connection unavailable", exc_info=True)
                return
            tally.add(self._clock(), read_report(report), pc.connectionState == "connected")
            self.samples += 1
            self.sampled.set()
            if not watched:
                return
            await asyncio.sleep(self._sample_s)
