"""The call's media endpoints, built fresh for each call: camera frames, microphone,
loudspeaker. Their stand-ins (test pattern, test tone) are PyAV adapters in
``appliance.hw.camera`` and ``appliance.hw.audio``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # PyAV is the media currency of the call; only needed for type hints here
    import av
    from av.stream import Stream


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

    async def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    """The microphone, for one call; ``read()`` returns paced audio frames."""

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
