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
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
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

Handler = Callable[[AnyRtcpPacket], Coroutine[Any, Any, None]]


def set_encoder_bitrate(sender: RTCRtpSender, bitrate_bps: int) -> None:
    """Aim aiortc's own encoder (raw frames) at ``bitrate_bps``; it clamps to its range.

    Before the first frame there is no encoder yet: the next REMB brings it here again.
    """
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)  # aiortc keeps it private
    if encoder is not None and hasattr(encoder, "target_bitrate"):
        encoder.target_bitrate = bitrate_bps


class SenderFeedback:
    """Wraps one video sender's RTCP handling; one per peer connection's video sender."""

    def __init__(
        self, sender: RTCRtpSender, camera: FrameSource, climber: RungClimber | None
    ) -> None:
        self._sender = sender
        self._camera = camera
        self._climber = climber
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
                if report.ssrc == ssrc:
                    climber.loss(report.fraction_lost / 256)
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
