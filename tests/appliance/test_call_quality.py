"""The call's quality meter: its accounting on synthetic timelines, and the meter on a real
counter peer against a real aiortc "agent" peer over loopback (losses made by dropping real
RTP packets, a freeze by pausing the agent's camera)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from fractions import Fraction

import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.rtp import is_rtcp
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream

from appliance.call.peer import CallPeer
from appliance.call.quality import (
    AudioGaps,
    CallQualityMeter,
    ConnectionTally,
    FreezeMeter,
    RemoteReport,
    Rungs,
    StatsSample,
    figures,
)
from guichet.events import EventField
from guichet.quality import QUALITY_KEYS, read_quality
from tests.appliance.call_support import AgentPeer, RecordingScreen, TestMedia

OPUS = Fraction(1, 48_000)
FRAME = 960  # 20 ms at 48 kHz


# --- freezes (synthetic) ------------------------------------------------------------------


def test_a_gap_longer_than_half_a_second_is_one_freeze_for_its_whole_length() -> None:
    meter = FreezeMeter()
    t = 10.0
    for _ in range(60):  # 2 s at 30 fps
        meter.frame(t)
        t += 1 / 30
    t += 1.2  # nothing for 1.2 s
    meter.frame(t)
    meter.frame(t + 0.4)  # 0.4 s: slow, not frozen
    meter.frame(t + 0.45)
    count, frozen = meter.totals(t + 0.5)
    assert count == 1
    assert frozen == pytest.approx(1.2 + 1 / 30)


def test_a_freeze_still_going_at_the_end_counts_and_the_start_does_not() -> None:
    meter = FreezeMeter()
    assert meter.totals(100.0) == (0, 0.0)  # no frame yet: the call's start, not a freeze
    meter.frame(5.0)
    assert meter.totals(5.4) == (0, 0.0)
    assert meter.totals(8.0) == (1, pytest.approx(3.0))


# --- audio gaps (synthetic) ---------------------------------------------------------------


def _play(gaps: AudioGaps, start_pts: int, frames: int, t: float) -> tuple[int, float]:
    pts = start_pts
    for _ in range(frames):
        gaps.frame(t, pts % (1 << 32), FRAME, 48_000, OPUS)
        pts += FRAME
        t += 0.02
    return pts, t


def test_missing_audio_frames_are_gaps_and_a_continuous_stream_is_not() -> None:
    gaps = AudioGaps()
    pts, t = _play(gaps, 0, 50, 0.0)
    assert gaps.missing_s == 0.0
    pts += 3 * FRAME  # three packets lost
    _play(gaps, pts, 10, t + 0.06)
    assert gaps.missing_s == pytest.approx(0.06)


def test_audio_timestamps_wrapping_or_restarting_are_not_gaps() -> None:
    gaps = AudioGaps()
    _, t = _play(gaps, (1 << 32) - 10 * FRAME, 20, 0.0)  # wraps at 2**32 midway
    assert gaps.missing_s == 0.0
    _play(gaps, 123, 5, t)  # a new stream, timestamps from elsewhere
    assert gaps.missing_s <= 0.02  # at most the one frame's wait


def test_a_timestamp_leap_counts_no_more_than_the_time_waited() -> None:
    gaps = AudioGaps()
    pts, t = _play(gaps, 0, 5, 0.0)
    gaps.frame(t + 0.5, pts + 48_000 * 3600, FRAME, 48_000, OPUS)  # "an hour" in 0.5 s
    assert gaps.missing_s == pytest.approx(0.52)


# --- bitrate, loss, round trip (synthetic samples) ------------------------------------------


def _feed(
    tally: ConnectionTally, t: float, kbps: list[float], *, sent: int = 0, connected: bool = True
) -> tuple[float, int]:
    """One sample a second at these rates; returns the last sample's time and bytes."""
    tally.add(t, StatsSample(sent, {}), connected)
    for rate in kbps:
        t += 1.0
        sent += int(rate * 1000 / 8)
        tally.add(t, StatsSample(sent, {}), connected)
    return t, sent


def test_average_and_minimum_bitrate_over_connected_time() -> None:
    tally = ConnectionTally()
    t, sent = _feed(tally, 0.0, [800] * 10 + [200] * 10)
    _feed(tally, t + 30, [0, 0, 0], sent=sent, connected=False)  # down: not connected time
    out = figures(
        measured_s=50, tallies=[tally], freezes=(0, 0.0), audio_missing_s=0, rungs=Rungs()
    )
    assert out[EventField.VIDEO_KBPS_AVG] == 500
    assert out[EventField.VIDEO_KBPS_MIN] == 200
    assert tally.connected_s == pytest.approx(20.0)


def test_a_short_call_s_minimum_is_its_average() -> None:
    tally = ConnectionTally()
    _feed(tally, 0.0, [400, 600])
    out = figures(measured_s=2, tallies=[tally], freezes=(0, 0.0), audio_missing_s=0, rungs=Rungs())
    assert out[EventField.VIDEO_KBPS_MIN] == out[EventField.VIDEO_KBPS_AVG] == 500


def test_loss_and_round_trip_add_up_across_connections() -> None:
    first, second = ConnectionTally(), ConnectionTally()
    first.add(0.0, StatsSample(0, {"video": RemoteReport(10, 990, 0.100)}), True)
    first.add(1.0, StatsSample(0, {"video": RemoteReport(20, 1980, 0.120)}), True)
    second.add(5.0, StatsSample(0, {"video": RemoteReport(30, 970, 0.200)}), True)
    out = figures(
        measured_s=10, tallies=[first, second], freezes=(0, 0.0), audio_missing_s=0, rungs=Rungs()
    )
    assert out[EventField.LOSS_PCT] == pytest.approx(100 * 50 / 3000, abs=0.01)
    assert out[EventField.RTT_MS] == 140


def test_unmeasured_figures_are_left_out() -> None:
    out = figures(
        measured_s=0,
        tallies=[ConnectionTally()],
        freezes=(0, 0.0),
        audio_missing_s=0,
        rungs=Rungs(),
    )
    assert set(out) == {"measured_s", "freezes", "frozen_s", "rung_steps"}


# --- rungs ------------------------------------------------------------------------------------


def test_rung_steps_and_the_lowest_rung() -> None:
    meter = CallQualityMeter()
    for label in ("720p30", "720p30", "540p30", "360p15", "540p30", "720p30"):
        meter.note_rung(label)
    meter.started_at = time.monotonic()
    out = meter.summary()
    assert out[EventField.RUNG_STEPS] == 4
    assert out[EventField.LOWEST_RUNG] == "360p15"


def test_a_meter_never_connected_says_nothing() -> None:
    assert CallQualityMeter().summary() == {}


def test_the_summary_is_what_the_server_reads() -> None:
    tally = ConnectionTally()
    _feed(tally, 0.0, [300] * 6)
    tally.add(7.0, StatsSample(10**6, {"audio": RemoteReport(1, 99, 0.05)}), True)
    rungs = Rungs()
    rungs.note("720p30")
    rungs.note("360p15")
    out = figures(measured_s=7, tallies=[tally], freezes=(1, 0.7), audio_missing_s=0.1, rungs=rungs)
    assert set(out) == set(QUALITY_KEYS)
    reading = read_quality(out)
    assert reading.rejected == {}
    assert set(reading.values) == set(QUALITY_KEYS)


# --- real peers over loopback -----------------------------------------------------------------


class PausableVideo(VideoStreamTrack):
    """The agent's camera, which can stop for a while (a frozen picture at the counter)."""

    def __init__(self) -> None:
        super().__init__()
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        self._resume_at = time.monotonic() + seconds

    async def recv(self) -> Frame | Packet[Stream]:
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # the camera itself is silent this long
        return await super().recv()


def drop_rtp(pc: RTCPeerConnection, keep: Callable[[bytes], bool]) -> None:
    """Make ``pc`` lose the outgoing RTP packets ``keep`` refuses (RTCP always goes)."""
    transport = pc.getTransceivers()[0].sender.transport
    send: Callable[[bytes], Awaitable[None]] = transport._send_rtp

    async def lossy(data: bytes) -> None:
        if is_rtcp(data) or keep(data):
            await send(data)

    transport._send_rtp = lossy


def every(n: int) -> Callable[[bytes], bool]:
    """Keep all but one packet in ``n``."""
    count = 0

    def keep(data: bytes) -> bool:
        nonlocal count
        count += 1
        return count % n != 0

    return keep


class Counter:
    def __init__(self) -> None:
        self.media = TestMedia()
        self.screen = RecordingScreen()
        self.peer = CallPeer(
            self.media, screen=self.screen, ice_servers=[], on_connected=_no, on_lost=_no
        )

    @property
    def meter(self) -> CallQualityMeter:
        return self.peer.meter

    async def wait_summary(self, *keys: str, timeout: float = 30) -> dict[str, object]:
        """The summary once it has ``keys`` (the agent's receiver reports come every ~1 s)."""
        async with asyncio.timeout(timeout):
            while True:
                summary = self.meter.summary()
                if all(k in summary for k in keys):
                    return dict(summary)
                self.meter.sampled.clear()
                await self.meter.sampled.wait()


def _no() -> None:
    """A media event the test does not follow."""


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    c = Counter()
    yield c
    await c.peer.close()


async def connect(agent: AgentPeer, counter: Counter) -> None:
    await agent.accept(await counter.peer.answer(await agent.offer()))


@pytest.mark.slow
async def test_a_real_call_measures_bitrate_loss_and_round_trip(counter: Counter) -> None:
    agent = AgentPeer()
    try:
        await connect(agent, counter)
        await agent.wait_frames(5)
        summary = await counter.wait_summary("video_kbps_avg", "loss_pct", "rtt_ms")
        assert summary["video_kbps_avg"] > 0  # type: ignore[operator]
        assert summary["loss_pct"] == 0  # loopback loses nothing
        assert 0 <= summary["rtt_ms"] < 1000  # type: ignore[operator]
        assert read_quality(summary).rejected == {}

        pc = counter.peer._pc
        assert pc is not None
        drop_rtp(pc, every(5))  # now the counter's uplink loses a packet in five
        async with asyncio.timeout(30):
            while (counter.meter.summary().get("loss_pct") or 0) < 1:  # type: ignore[operator]
                counter.meter.sampled.clear()
                await counter.meter.sampled.wait()
    finally:
        await agent.close()


@pytest.mark.slow
async def test_a_freeze_and_lost_audio_of_the_agent_are_seen(counter: Counter) -> None:
    agent = AgentPeer()
    camera = PausableVideo()
    sender = next(s for s in agent.pc.getSenders() if s.track and s.track.kind == "video")
    sender.replaceTrack(camera)
    try:
        await connect(agent, counter)
        async with asyncio.timeout(20):
            await counter.screen.frame_seen.wait()
        drop_rtp(agent.pc, _not_every_tenth_audio(agent.pc))
        camera.pause(1.5)
        async with asyncio.timeout(20):  # the 1.5 s pause is a freeze of about that long
            while (counter.meter.summary().get("frozen_s") or 0) < 1.2:  # type: ignore[operator]
                counter.meter.sampled.clear()
                await counter.meter.sampled.wait()
        summary = counter.meter.summary()
        assert summary["freezes"] >= 1  # type: ignore[operator]
        assert summary["audio_gaps_pct"] > 0  # type: ignore[operator]
    finally:
        await agent.close()


def _not_every_tenth_audio(pc: RTCPeerConnection) -> Callable[[bytes], bool]:
    """Lose one audio packet in ten (told by the audio sender's SSRC, bytes 8-11)."""
    audio = next(s for s in pc.getSenders() if s.track and s.track.kind == "audio")
    ssrc = audio._ssrc.to_bytes(4, "big")
    count = 0

    def keep(data: bytes) -> bool:
        nonlocal count
        if data[8:12] != ssrc:
            return True
        count += 1
        return count % 10 != 0

    return keep


@pytest.mark.slow
async def test_an_ice_restart_keeps_adding_to_the_same_meter(counter: Counter) -> None:
    first, second = AgentPeer(), AgentPeer()
    try:
        await connect(first, counter)
        await first.wait_frames(5)
        before = await counter.wait_summary("video_kbps_avg", "rtt_ms")
        await connect(second, counter)  # new ICE credentials: a fresh RTCPeerConnection
        await second.wait_frames(5)
        await first.close()
        async with asyncio.timeout(30):
            while counter.meter.tallies[-1].rtt_samples == 0:
                counter.meter.sampled.clear()
                await counter.meter.sampled.wait()
        after = counter.meter.summary()
        assert counter.peer.connections == 2
        assert len(counter.meter.tallies) == 2
        assert all(t.video_bytes > 0 for t in counter.meter.tallies)
        assert after["measured_s"] > before["measured_s"]  # type: ignore[operator]
        assert "rtt_ms" in after
    finally:
        await first.close()
        await second.close()
