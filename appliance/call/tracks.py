"""aiortc tracks over the media ports, and pumps from received tracks to screen and speaker.

A track is a thin wrapper: aiortc's sender calls ``recv()`` and stops the track when its
RTP loop ends (a peer connection closed or replaced), so tracks are made per peer
connection while the sources they read live for the whole call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream

from appliance.hw.audio.frames import AudioFormatError
from appliance.hw.audio.opus import OpusSpeechEncoder, PacketQueue, SpeechSettings
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
    """The microphone, sent as Opus tuned for speech on a poor line (mono, in-band FEC, DTX:
    ``appliance.hw.audio.opus``); aiortc's sender packs our packets as they are.

    Encoding runs off the loop; one ``recv()`` returns one packet, and reads as many frames
    as that takes (none is sent during DTX silence).
    """

    kind = "audio"

    def __init__(self, source: AudioSource, *, settings: SpeechSettings | None = None) -> None:
        super().__init__()
        self._source = source
        if settings is None and not source.speech:  # a test signal: sent whole, no DTX
            settings = SpeechSettings(dtx=False)
        self._encoder = OpusSpeechEncoder(settings)
        self._queue = PacketQueue()
        self.frames_dropped = 0

    async def recv(self) -> Packet[Stream]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if (packet := self._queue.pop()) is not None:
                return packet
            frame = await self._source.read()
            try:
                self._queue.extend(await asyncio.to_thread(self._encoder.encode, frame))
            except AudioFormatError as exc:  # 20 ms lost, not the call's sound
                self.frames_dropped += 1
                if self.frames_dropped == 1:
                    logger.warning("microphone frame dropped: %s", exc)


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
