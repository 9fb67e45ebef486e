"""The agent's video behind a lost packet: aiortc's own jitter buffer, with and without the
counter's ``HoleSkipper`` (``appliance.call.jitter``)."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from appliance.call.jitter import STALL_S, HoleSkipper

FRAME_S = 1 / 30
PACKETS_PER_FRAME = 3
LOST_AT = 10 * PACKETS_PER_FRAME + 1  # the middle packet of the 11th frame


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frames_out(buffer: JitterBuffer, clock: Clock, frames: int) -> list[int]:
    """Feed ``frames`` frames of 3 packets (one lost); the frames' indexes that came out."""
    out: list[int] = []
    sequence = 65500  # the sequence numbers wrap on the way
    for index in range(frames):
        for part in range(PACKETS_PER_FRAME):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=sequence % 65536,
                timestamp=index * 3000,
                marker=int(part == PACKETS_PER_FRAME - 1),
            )
            packet._data = b"\x00" * 100  # type: ignore[attr-defined]  # aiortc's depayloaded data
            if sequence - 65500 != LOST_AT:
                _pli, frame = buffer.add(packet)
                if frame is not None:
                    out.append(frame.timestamp // 3000)
            sequence += 1
        clock.now += FRAME_S
    return out


def test_aiortc_alone_waits_for_the_lost_packet_for_hundreds_of_packets() -> None:
    """What the skipper is for; if this fails, aiortc fixed it (pull request #1418) and the
    skipper can go."""
    out = frames_out(JitterBuffer(capacity=512, is_video=True), Clock(), 100)
    assert max(out) < 10  # 90 frames (3 s) later, still nothing after the hole


def test_the_skipper_starts_again_after_the_hole_and_asks_for_a_keyframe() -> None:
    clock = Clock()
    buffer = JitterBuffer(capacity=512, is_video=True)
    skipper = HoleSkipper(buffer, clock=clock)
    out = frames_out(buffer, clock, 100)
    after = [index for index in out if index > 10]
    assert skipper.holes_skipped == 1
    assert after, "no frame after the hole"
    assert after[0] <= 10 + (STALL_S + 0.2) / FRAME_S  # within about half a second
    assert after == list(range(after[0], 99))  # then every frame, in order


def test_a_slow_sender_without_holes_is_left_alone() -> None:
    """One frame a second (a squeezed browser): long waits, but no hole to skip."""
    clock = Clock()
    buffer = JitterBuffer(capacity=512, is_video=True)
    skipper = HoleSkipper(buffer, clock=clock)
    sequence = 0
    for index in range(20):
        for part in range(PACKETS_PER_FRAME):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=sequence,
                timestamp=index * 90000,
                marker=int(part == PACKETS_PER_FRAME - 1),
            )
            packet._data = b"\x00" * 100  # type: ignore[attr-defined]
            buffer.add(packet)
            sequence += 1
        clock.now += 1.0
    assert skipper.holes_skipped == 0


def test_a_big_frame_arriving_slowly_is_no_hole() -> None:
    """A keyframe of 60 packets taking 0.6 s on a slow downlink: nothing to skip, and no
    keyframe asked for (asking would bring another big keyframe, and so on)."""
    clock = Clock()
    buffer = JitterBuffer(capacity=512, is_video=True)
    skipper = HoleSkipper(buffer, clock=clock)
    sequence, plis = 0, 0
    for index, size in enumerate([3, 60, 3, 3, 60, 3, 3]):
        for part in range(size):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=sequence,
                timestamp=index * 3000,
                marker=int(part == size - 1),
            )
            packet._data = b"\x00" * 100  # type: ignore[attr-defined]
            pli, _frame = buffer.add(packet)
            plis += pli
            sequence += 1
            clock.now += 0.01
    assert skipper.holes_skipped == 0
    assert plis == 0
