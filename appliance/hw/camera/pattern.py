"""Test-pattern cameras: PyAV's ``lavfi`` ``testsrc``, raw or pre-encoded H.264.

``TestPatternSource`` gives raw frames that aiortc encodes (what a USB webcam or a Pi 5
costs). ``H264TestPatternSource`` stands in for a hardware encoder (the Pi 4's): it encodes
a short clip with libx264 (baseline, zero latency, Annex B with SPS/PPS before every
keyframe) when the call opens, then replays its packets in real time, so sending costs
only RTP packetization. A keyframe request jumps to the next keyframe of the clip.

``lavfi`` is not paced in real time: both sources pace themselves (``appliance.hw.pacing``).

Both follow the call's video rung (``set_rung``): the raw source scales and thins its
frames (``appliance.hw.camera.rungs``); the H.264 source switches to a clip encoded at the
rung's size, frame rate and bitrate (encoded in the background the first time it is asked
for, the old rung going on meanwhile), starting at its keyframe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.stream import Stream
from av.video.frame import PictureType

from appliance.errors import HardwareError
from appliance.hw.camera.rungs import RawRungFitter
from appliance.hw.pacing import VIDEO_TIME_BASE, Pacer, video_pts
from appliance.hw.ports import VideoRung
from appliance.hw.pyav_input import PyavInput

logger = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 30
CLIP_S = 4.0  # replayed clip length: loops seamlessly, long enough to look alive
KEYFRAME_EVERY_S = 1.0  # GOP of the clip: a late joiner or a loss waits at most this
H264_BITRATE = 1_500_000  # bits/s: 720p30 talking heads look clean in ~1.5 Mbit/s
H264_PROFILE_LEVEL_ID = "42e01f"  # constrained baseline 3.1: what the clip is, what we negotiate


def lavfi_testsrc(size: tuple[int, int], fps: int) -> str:
    width, height = size
    return f"testsrc=size={width}x{height}:rate={fps},format=yuv420p"


class TestPatternSource:
    """Raw ``yuv420p`` frames of ``testsrc``, paced at ``fps``."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, fps: int = DEFAULT_FPS) -> None:
        self._size = size
        self._fps = fps
        self._pacer = Pacer(1 / fps)
        self._input = PyavInput("testsrc")
        self._fitter = RawRungFitter(size, fps)

    @property
    def encoded(self) -> bool:
        return False

    async def open(self) -> None:
        await self._input.open(lavfi_testsrc(self._size, self._fps), format="lavfi", media="video")

    async def read(self) -> av.VideoFrame:
        while True:
            elapsed = await self._pacer.tick()
            frame: av.VideoFrame = await self._input.next_frame(closed="test pattern is closed")
            if self._fitter.keep(elapsed):
                break
        frame.pts = video_pts(elapsed)
        frame.time_base = VIDEO_TIME_BASE
        return self._fitter.fit(frame)

    def request_keyframe(self) -> None:
        """Raw frames: aiortc's encoder honours the request itself."""

    def set_rung(self, rung: VideoRung) -> None:
        self._fitter.set_rung(rung)

    async def close(self) -> None:
        await self._input.close()


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes  # Annex B: start codes, SPS/PPS in front of keyframes
    keyframe: bool


def encode_clip(
    size: tuple[int, int], fps: int, seconds: float, *, bitrate: int = H264_BITRATE
) -> list[EncodedPicture]:
    """Encode ``seconds`` of test pattern to H.264 constrained baseline (blocking)."""
    encoder: Any = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps, 1)
    encoder.bit_rate = bitrate
    encoder.gop_size = max(1, round(KEYFRAME_EVERY_S * fps))
    encoder.profile = "Baseline"
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "level": "31",
        # Constant bitrate (filler where the picture is simple), as a camera's hardware
        # encoder gives: the test pattern alone would take 60-85 % of its target.
        "x264-params": "nal-hrd=cbr",
        "maxrate": str(bitrate),
        "bufsize": str(bitrate // 2),
    }
    pictures: list[EncodedPicture] = []
    wanted = max(1, round(seconds * fps))
    with av.open(lavfi_testsrc(size, fps), format="lavfi") as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= wanted:
                break
            frame.pts = index
            frame.time_base = encoder.time_base
            frame.pict_type = PictureType.NONE  # lavfi marks every frame I: let x264 choose
            pictures.extend(_pictures(encoder.encode(frame)))
    pictures.extend(_pictures(encoder.encode(None)))
    if not pictures or not pictures[0].keyframe:
        raise HardwareError("libx264 did not start the clip with a keyframe")
    return pictures


def _pictures(packets: Any) -> list[EncodedPicture]:
    return [EncodedPicture(bytes(p), bool(p.is_keyframe)) for p in packets]


class H264TestPatternSource:
    """Pre-encoded H.264 packets of the test pattern, replayed in real time."""

    def __init__(
        self,
        size: tuple[int, int] = DEFAULT_SIZE,
        fps: int = DEFAULT_FPS,
        *,
        clip_s: float = CLIP_S,
        bitrate: int = H264_BITRATE,
    ) -> None:
        self._size = size
        self._fps = fps
        self._clip_s = clip_s
        self._bitrate = bitrate
        self._clip: list[EncodedPicture] = []
        self._index = 0
        self._pacer = Pacer(1 / fps)
        self._keyframe_wanted = False
        self._clips: dict[VideoRung, list[EncodedPicture]] = {}  # rungs encoded so far
        self._wanted: VideoRung | None = None  # the rung asked for, maybe not encoded yet
        self._encoding: asyncio.Task[None] | None = None
        self.rung: VideoRung | None = None  # the rung being sent (None: as built)
        self.keyframe_requests = 0  # how many PLI/FIR reached this source
        self.keyframe_requested = asyncio.Event()

    @property
    def encoded(self) -> bool:
        return True

    async def open(self) -> None:
        wanted = self._wanted
        if wanted is None:
            self._clip = await asyncio.to_thread(
                encode_clip, self._size, self._fps, self._clip_s, bitrate=self._bitrate
            )
        else:  # a rung chosen before the call's first picture: start with it
            self._clip = await asyncio.to_thread(self._encode_rung, wanted)
            self._clips[wanted] = self._clip
            self._switch(wanted)
        self._index = 0
        logger.debug("H.264 clip ready: %d pictures", len(self._clip))

    def set_rung(self, rung: VideoRung) -> None:
        self._wanted = rung
        if not self._clip:
            return  # open() encodes it first
        if rung in self._clips:
            self._switch(rung)
        elif self._encoding is None or self._encoding.done():
            self._encoding = asyncio.create_task(self._prepare(rung), name="camera:rung-clip")

    async def read(self) -> av.Packet[Stream]:
        if not self._clip:
            raise HardwareError("H.264 test pattern is not open")
        elapsed = await self._pacer.tick()
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            self._index = self._next_keyframe(self._index)
        picture = self._clip[self._index]
        self._index = (self._index + 1) % len(self._clip)
        packet = av.Packet(picture.data)
        packet.pts = video_pts(elapsed)
        packet.time_base = VIDEO_TIME_BASE
        return packet

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True
        self.keyframe_requested.set()

    async def close(self) -> None:
        self._clip = []
        self._clips.clear()
        if self._encoding is not None:
            self._encoding.cancel()

    def _encode_rung(self, rung: VideoRung) -> list[EncodedPicture]:
        size = (min(rung.width, self._size[0]), min(rung.height, self._size[1]))
        fps = min(rung.fps, self._fps)
        return encode_clip(size, fps, self._clip_s, bitrate=rung.bitrate_bps)

    async def _prepare(self, rung: VideoRung) -> None:
        """Encode ``rung``'s clip in a thread, then switch to the rung wanted by then."""
        try:
            self._clips[rung] = await asyncio.to_thread(self._encode_rung, rung)
        except HardwareError:
            logger.exception("the test pattern cannot be encoded at %s", rung.name)
            return
        wanted = self._wanted
        if wanted is None or not self._clip:
            return
        if wanted in self._clips:
            self._switch(wanted)
        else:  # asked for another one meanwhile
            self._encoding = asyncio.create_task(self._prepare(wanted), name="camera:rung-clip")

    def _switch(self, rung: VideoRung) -> None:
        """From the next picture on: ``rung``'s clip, from its first picture (a keyframe)."""
        if rung == self.rung:
            return
        self._clip = self._clips[rung]
        self._index = 0
        self._keyframe_wanted = False
        self._pacer.retime(1 / min(rung.fps, self._fps))
        self.rung = rung
        logger.info("test pattern now sends %s", rung.name)

    def _next_keyframe(self, start: int) -> int:
        count = len(self._clip)
        for step in range(count):
            index = (start + step) % count
            if self._clip[index].keyframe:
                return index
        return 0
