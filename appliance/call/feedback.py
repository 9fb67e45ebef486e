"""The agent's RTCP about our video, turned into what the camera and the climber need.

aiortc's ``RTCRtpSender._handle_rtcp_packet`` reads the receiver's RTCP but keeps it for
its own encoder: a keyframe request (PLI/FIR) only sets a flag its ``encode()`` reads, and
a REMB only sets its encoder's ``target_bitrate``. Pre-encoded packets from
``track.recv()`` go to ``pack()`` and never see either. So the sender's instance method is
wrapped (aiortc's RTCP dispatch calls it on the instance): aiortc still does its part
first, then keyframe requests reach the camera and REMB, losses and round trips reach the
``RungClimber`` (``appliance.call.adaptation``).

For raw frames, aiortc's encoder keeps the rung's bitrate: aiortc sets it to each REMB,
and this module sets it back to the rung's (the climber already weighed the REMB).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from appliance.call.adaptation import RungClimber
from appliance.hw.ports import FrameSource

logger = logging.getLogger(__name__)

# RFC 5104 §4.3.1, Full Intra Request: payload-specific feedback FMT 4. aiortc exports it from
# 1.12 on; the image's (Debian trixie's 1.11) does not.
RTCP_PSFB_FIR = 4

Handler = Callable[[AnyRtcpPacket], Coroutine[Any, Any, None]]
LOSS_WINDOW_S = 1.0  # losses judged over this long, not report by report


def set_encoder_bitrate(sender: RTCRtpSender, bitrate_bps: int) -> None:
    """Aim aiortc's own encoder (raw frames) at ``bitrate_bps``; it clamps to its range.

    Before the first frame there is no encoder yet: the next REMB brings it here again.
    """
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)  # aiortc keeps it private
    if encoder is not None and hasattr(encoder, "target_bitrate"):
        encoder.target_bitrate = bitrate_bps


class LossWindow:
    """Our packets lost over about a second, from receiver reports' running counts.

    A report's own ``fraction_lost`` covers the time since the receiver's previous report,
    and Chromium adds report blocks to every compound RTCP packet (NACKs, PLIs): under loss
    they come every few ms and their fractions swing between 0 and 80 %. The cumulative
    counts (highest sequence received, packets lost) give a steady figure instead.
    """

    def __init__(
        self, *, window_s: float = LOSS_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._start: tuple[float, int, int] | None = None

    def update(self, highest_sequence: int, packets_lost: int) -> float | None:
        """The share lost since the window opened, once it is ``window_s`` old (then a new
        window opens); None meanwhile."""
        now = self._clock()
        if self._start is None or highest_sequence < self._start[1]:  # first, or a reset
            self._start = (now, highest_sequence, packets_lost)
            return None
        started, sequence, lost = self._start
        if now - started < self._window_s:
            return None
        self._start = (now, highest_sequence, packets_lost)
        expected = highest_sequence - sequence
        if expected <= 0:
            return None
        return min(1.0, max(0.0, (packets_lost - lost) / expected))


class SenderFeedback:
    """Wraps one video sender's RTCP handling; one per peer connection's video sender."""

    def __init__(
        self, sender: RTCRtpSender, camera: FrameSource, climber: RungClimber | None
    ) -> None:
        self._sender = sender
        self._camera = camera
        self._climber = climber
        self._losses = LossWindow()
        self._original: Handler = sender._handle_rtcp_packet
        setattr(sender, "_handle_rtcp_packet", self._handle)  # noqa: B010 - an instance override

    async def _handle(self, packet: AnyRtcpPacket) -> None:
        await self._original(packet)
        keyframe = isinstance(packet, RtcpPsfbPacket) and packet.fmt in (
            RTCP_PSFB_PLI,
            RTCP_PSFB_FIR,
        )
        if keyframe and self._camera.encoded:  # aiortc's own encoder already honours it
            self._camera.request_keyframe()
        climber = self._climber
        if climber is None:
            return
        ssrc = self._sender._ssrc
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return  # another application's feedback
            if ssrc in ssrcs:
                climber.remb(bitrate)
                if not self._camera.encoded:
                    set_encoder_bitrate(self._sender, climber.rung.bitrate_bps)
        elif isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc != ssrc:
                    continue
                if (
                    lost := self._losses.update(report.highest_sequence, report.packets_lost)
                ) is not None:
                    climber.loss(lost)
                if (rtt_s := await self._round_trip()) is not None:
                    climber.round_trip(rtt_s)

    async def _round_trip(self) -> float | None:
        """aiortc's smoothed round trip, updated from this very report."""
        stats = await self._sender.getStats()
        for item in stats.values():
            if getattr(item, "type", None) == "remote-inbound-rtp":
                rtt = getattr(item, "roundTripTime", None)
                return float(rtt) if rtt is not None else None
        return None
