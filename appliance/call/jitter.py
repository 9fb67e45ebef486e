"""The agent's video on the counter's screen: never stuck behind packets that will not come.

aiortc 1.16's video jitter buffer (512 packets) hands frames out in sequence order and waits,
without a deadline, for a missing packet: after a lost packet that NACK could not bring back,
or after a cut line (the browser went on sending into the void for seconds), frames pile up
behind the hole until 512 more packets have pushed it out — 3 s and more of frozen agent on
the counter's screen (measured on the adsl profile after a 10-s cut: packets back at once,
the first picture 3.1–3.3 s later). Upstream knows it (aiortc issues #1416 and #1417, and the
jitter buffer rewrite of pull request #1418, open); until it lands, ``HoleSkipper`` watches
the receiver's buffer: when packets keep arriving (``STALL_PACKETS``) and no frame has come
out for ``STALL_S``, it drops what waits behind the hole, starts again from the newest
frame, and asks the browser for a keyframe (aiortc sends the PLI when its buffer says so).

The buffer is aiortc's private ``_RTCRtpReceiver__jitter_buffer`` (its ``add`` wrapped on the
instance, as ``appliance.call.feedback`` wraps the sender's RTCP handler); its public
``remove`` drops packets, and its private ``_origin`` says where it waits. If a new aiortc
changes any of that, ``skip_holes`` logs a warning and leaves the receiver as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)

STALL_S = 0.3  # no frame out for this long…
STALL_PACKETS = 20  # …while this many packets came in: a hole, not a slow sender
# (at 30 frames/s and 3 packets a frame, 20 packets is 7 frames; a sender down to one frame
# a second sends far fewer packets a second than that)


class HoleSkipper:
    """Wraps one jitter buffer's ``add``; see the module's docstring."""

    def __init__(
        self, buffer: JitterBuffer, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buffer = buffer
        self._clock = clock
        self._original = buffer.add
        self._last_frame_at = clock()
        self._since_frame = 0
        self._frame_starts: dict[int, int] = {}  # RTP timestamp → first sequence number seen
        self.holes_skipped = 0
        setattr(buffer, "add", self.add)  # noqa: B010 - an instance override

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        starts = self._frame_starts
        first = starts.setdefault(packet.timestamp, packet.sequence_number)
        if _before(packet.sequence_number, first):
            starts[packet.timestamp] = packet.sequence_number
        pli, frame = self._original(packet)
        now = self._clock()
        if frame is not None:
            self._last_frame_at, self._since_frame = now, 0
            self._forget_before(frame.timestamp)
            return pli, frame
        self._since_frame += 1
        if self._since_frame >= STALL_PACKETS and now - self._last_frame_at >= STALL_S:
            self._last_frame_at, self._since_frame = now, 0
            if self._skip_to(starts[packet.timestamp]):
                return True, None  # aiortc sends the PLI
        return pli, None

    def _skip_to(self, sequence: int) -> bool:
        """Drop what waits before ``sequence``; False if nothing does (a big frame still
        arriving on a slow line is no hole: no keyframe is asked for it)."""
        origin = getattr(self._buffer, "_origin", None)
        if not isinstance(origin, int):
            return False
        count = (sequence - origin) % 65536
        if not 0 < count < self._buffer.capacity:
            return False
        self._buffer.remove(count)
        self.holes_skipped += 1
        logger.info("the agent's video waited behind lost packets: %d skipped", count)
        return True

    def _forget_before(self, timestamp: int) -> None:
        if len(self._frame_starts) > 64:  # frames out: their starts are no longer needed
            for stamp in [t for t in self._frame_starts if t != timestamp]:
                del self._frame_starts[stamp]


def _before(a: int, b: int) -> bool:
    """Sequence number ``a`` comes before ``b`` (16 bits, wrapping)."""
    return a != b and (b - a) % 65536 < 32768


def skip_holes(receiver: RTCRtpReceiver) -> HoleSkipper | None:
    """Guard ``receiver``'s video jitter buffer; None if aiortc no longer has it."""
    buffer: Any = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
    if not isinstance(buffer, JitterBuffer) or not hasattr(buffer, "_origin"):
        logger.warning("aiortc's receiver has no jitter buffer to guard: left as it is")
        return None
    return HoleSkipper(buffer)
