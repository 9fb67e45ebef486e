"""aiortc tracks over the media ports, and pumps from received tracks to screen and speaker.

A track is a thin wrapper: aiortc's sender calls ``recv()`` and stops the track when its
RTP loop ends (a peer connection closed or replaced), so tracks are made per peer
connection while the sources they read live for the whole call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream

from appliance.hw.ports import AudioSource, FrameSource

logger = logging.getLogger(__name__)


class CameraTrack(MediaStreamTrack):
    """The camera; raw frames are also handed to ``preview`` (the screen's self-view)."""

    kind = "video"

    def __init__(
        self, source: FrameSource, *, preview: Callable[[av.VideoFrame], None] | None = None
    ) -> None:
        super().__init__()
        self._source = source
        self._preview = preview

    async def recv(self) -> Frame | Packet[Stream]:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._source.read()
        if self._preview is not None and isinstance(item, av.VideoFrame):
            self._preview(item)
        return item


class MicrophoneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, source: AudioSource) -> None:
        super().__init__()
        self._source = source

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.read()


async def pump_video(track: MediaStreamTrack, show: Callable[[av.VideoFrame], None]) -> None:
    """Hand every decoded frame of ``track`` to ``show`` until the track ends."""
    count = 0
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            logger.debug("agent video ended after %d frames", count)
            return
        if isinstance(frame, av.VideoFrame):
            count += 1
            show(frame)


async def pump_audio(
    track: MediaStreamTrack, play: Callable[[av.AudioFrame], Awaitable[None]]
) -> None:
    """Hand every decoded audio frame of ``track`` to ``play`` until the track ends."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.AudioFrame):
            await play(frame)
