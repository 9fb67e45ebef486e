"""The call's media endpoints, built fresh for each call: camera frames, microphone,
loudspeaker. Their stand-ins (test pattern, test tone) are PyAV adapters in
``appliance.hw.camera`` and ``appliance.hw.audio``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # PyAV is the media currency of the call; only needed for type hints here
    import av
    from av.stream import Stream


@dataclass(frozen=True, slots=True)
class VideoRung:
    """One step of the video ladder: what the camera should send on the path it has.

    ``bitrate_bps`` is the encoder's target; the size and frame rate are what it encodes.
    The ladder itself (which rungs, when to step) is the call's business
    (``appliance.call.adaptation``); a source only moves to the rung it is given.
    """

    name: str  # "720p30": logged, reported in the call's quality summary
    width: int
    height: int
    fps: int
    bitrate_bps: int


@runtime_checkable
class FrameSource(Protocol):
    """The camera, for one call: ``open()``, then paced ``read()``s, then ``close()``.

    ``read()`` returns raw frames (aiortc encodes them) or, when ``encoded`` is true,
    H.264 Annex B packets that are sent without re-encoding. Timestamps (``pts`` and
    ``time_base``) follow the wall clock. A new source is built for each call.
    """

    @property
    def encoded(self) -> bool: ...
    async def open(self) -> None: ...
    async def read(self) -> av.VideoFrame | av.Packet[Stream]: ...
    def request_keyframe(self) -> None:
        """The far end lost pictures (PLI/FIR): make the next packet a keyframe, if possible."""
        ...

    def set_rung(self, rung: VideoRung) -> None:
        """Send at ``rung`` from now on (size, frame rate, target bitrate), starting with a
        keyframe; a source that cannot change one of them keeps it and says so in its log.

        Returns at once: a source that needs time (an encoder to restart) keeps sending the
        old rung meanwhile. ``rung`` never exceeds the size and frame rate it was built for.
        """
        ...

    async def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    """The microphone, for one call; ``read()`` returns paced audio frames."""

    @property
    def speech(self) -> bool:
        """True for a microphone (people speak and fall silent: the voice encoder may send
        nothing in silences, DTX); False for a test signal, sent whole."""
        ...

    async def open(self) -> None: ...
    async def read(self) -> av.AudioFrame: ...
    async def close(self) -> None: ...


@runtime_checkable
class AudioSink(Protocol):
    """The loudspeaker, for one call; ``play()`` queues one decoded frame of the agent's voice."""

    async def open(self) -> None: ...
    async def play(self, frame: av.AudioFrame) -> None: ...
    async def close(self) -> None: ...


@runtime_checkable
class MediaDevices(Protocol):
    """Builds fresh media endpoints for each call, so nothing stays open between calls."""

    def camera(self) -> FrameSource: ...
    def microphone(self) -> AudioSource: ...
    def speaker(self) -> AudioSink: ...
