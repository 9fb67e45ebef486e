"""The test call's media on the server (aiortc): an ``RTCPeerConnection`` that offers like an
agent's browser — a known stream (moving bars and silence) sent, the counter's camera and
microphone received and dropped — and reads its stats (``line_figures.Sample``).

Imported only when a test call starts (``answerer.py``): the server loads aiortc and PyAV
for nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCTransportStats,
)

from fleet_server.calls.line_figures import Sample
from fleet_server.errors import FleetError
from guichet.signalling import IceServer

logger = logging.getLogger(__name__)

PICTURE = (640, 360)  # what an agent's console typically sends a counter
BAR_PX = 40  # the moving bars' width; they move ``STEP_PX`` each frame
STEP_PX = 4


class LineTestFailedError(FleetError):
    """The test call's media did not connect (or the connection failed)."""


class MovingBars(VideoStreamTrack):
    """A known picture that moves (a still one would cost the encoder nothing to send)."""

    def __init__(self, size: tuple[int, int] = PICTURE) -> None:
        super().__init__()
        width, height = size
        columns = np.arange(width + 2 * BAR_PX, dtype=np.uint16)
        row = np.where((columns // BAR_PX) % 2 == 0, 200, 50).astype(np.uint8)
        self._luma = np.tile(row, (height, 1))  # wider than the picture: slid each frame
        self._chroma = np.full((height // 2, width), 128, dtype=np.uint8)
        self._width = width
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        offset = (self._index * STEP_PX) % (2 * BAR_PX)
        self._index += 1
        picture = np.vstack([self._luma[:, offset : offset + self._width], self._chroma])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


class AnswererPeer:
    """One test call's connection on the server's side."""

    def __init__(self, ice_servers: list[IceServer], picture: tuple[int, int] = PICTURE) -> None:
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in ice_servers
        ]
        # An empty list, not None: aiortc's default is Google's public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.pc.addTrack(MovingBars(picture))
        self.pc.addTrack(AudioStreamTrack())
        self._sink = MediaBlackhole()
        self._state = asyncio.Event()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._sink.addTrack(track)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            self._state.set()

    async def offer(self) -> str:
        """Our offer, all candidates gathered (aiortc does not trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError and its own errors
            raise LineTestFailedError(f"réponse du guichet refusée ({exc})") from exc
        await self._sink.start()

    async def connected(self) -> None:
        """Return once the media path is up; raise if it failed."""
        while (state := self.pc.connectionState) != "connected":
            if state in ("failed", "closed"):
                raise LineTestFailedError("la connexion média a échoué")
            self._state.clear()
            await self._state.wait()

    async def sample(self) -> Sample:
        if self.pc.connectionState != "connected":
            raise LineTestFailedError("la connexion média a été perdue pendant la mesure")
        report = await self.pc.getStats()
        stats = list(report.values())
        transports = [s for s in stats if isinstance(s, RTCTransportStats)]
        inbound = [s for s in stats if isinstance(s, RTCInboundRtpStreamStats)]
        remote = [s for s in stats if isinstance(s, RTCRemoteInboundRtpStreamStats)]
        return Sample(
            at_s=time.monotonic(),
            bytes_received=sum(s.bytesReceived for s in transports),
            bytes_sent=sum(s.bytesSent for s in transports),
            up_packets_received=sum(s.packetsReceived for s in inbound),
            up_packets_lost=sum(max(s.packetsLost, 0) for s in inbound),
            down_packets_received=sum(s.packetsReceived for s in remote),
            down_packets_lost=sum(max(s.packetsLost, 0) for s in remote),
            rtt_s=[s.roundTripTime for s in remote if s.roundTripTime is not None],
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may raise anything
            await self.pc.close()
        with contextlib.suppress(Exception):
            await self._sink.stop()
