"""A USB UVC webcam through PyAV's ``video4linux2`` demuxer.

Two modes, as the camera offers them:
- ``mjpeg``: JPEG pictures decoded (in C) to ``yuv420p`` frames that aiortc encodes;
- ``h264``: cameras with an on-board H.264 encoder; their Annex B packets are passed to
  aiortc without re-encoding. UVC offers no standard "keyframe now" control (it is a
  vendor extension unit), so a keyframe request is counted and logged; the camera's own
  GOP (usually 1-2 s) bounds the wait.

The camera paces itself: ``read()`` blocks (in a worker thread) until the next picture.
Timestamps are the wall clock, not the driver's.

The call's video rung (``set_rung``): decoded frames are scaled and thinned to it
(``appliance.hw.camera.rungs``); an H.264 camera's size, rate and bitrate are its own
(UVC has no standard control for them), so it keeps them and the log says so once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import av
from av.stream import Stream

from appliance.errors import HardwareError
from appliance.hw._bridge import short_error
from appliance.hw.camera.rungs import RawRungFitter
from appliance.hw.pacing import VIDEO_TIME_BASE, WallClock, video_pts
from appliance.hw.ports import VideoRung
from appliance.hw.serial_worker import SerialWorker

logger = logging.getLogger(__name__)

V4l2Format = Literal["mjpeg", "h264"]


class V4l2Source:
    """Frames (``mjpeg``) or H.264 packets (``h264``) from ``/dev/videoN``."""

    def __init__(
        self,
        device: str = "/dev/video0",
        *,
        input_format: V4l2Format = "mjpeg",
        size: tuple[int, int] = (1280, 720),
        fps: int = 30,
    ) -> None:
        self._device = device
        self._format: V4l2Format = input_format
        self._size = size
        self._fps = fps
        self._container: Any = None
        self._stream: Any = None
        self._pending: list[Any] = []  # decoded frames not yet handed out
        self._clock = WallClock()
        self._lock = asyncio.Lock()
        self._worker = SerialWorker("v4l2")
        self._fitter = RawRungFitter(size, fps)
        self._rung_ignored = False
        self.keyframe_requests = 0

    @property
    def encoded(self) -> bool:
        return self._format == "h264"

    async def open(self) -> None:
        width, height = self._size
        options = {
            "input_format": self._format,
            "video_size": f"{width}x{height}",
            "framerate": str(self._fps),
        }
        try:
            self._container = await self._worker.run(
                av.open, self._device, format="video4linux2", options=options
            )
        except (av.FFmpegError, OSError) as exc:
            raise HardwareError(f"camera {self._device}: {short_error(exc)}") from exc
        self._stream = self._container.streams.video[0]
        logger.info(
            "camera %s open (%s %dx%d@%d)", self._device, self._format, *self._size, self._fps
        )

    async def read(self) -> av.VideoFrame | av.Packet[Stream]:
        async with self._lock:
            if self._container is None:
                raise HardwareError(f"camera {self._device} is closed")
            while True:
                try:
                    item = await self._worker.run(self._next_item)
                except (av.FFmpegError, OSError, StopIteration) as exc:
                    raise HardwareError(f"camera {self._device}: {short_error(exc)}") from exc
                elapsed = self._clock.elapsed()
                if self.encoded or self._fitter.keep(elapsed):
                    break
        item.pts = video_pts(elapsed)
        item.time_base = VIDEO_TIME_BASE
        result: av.VideoFrame | av.Packet[Stream] = item if self.encoded else self._fitter.fit(item)
        return result

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        if self.encoded:
            logger.debug("keyframe requested; a UVC camera sends its next one on its own")

    def set_rung(self, rung: VideoRung) -> None:
        if not self.encoded:
            self._fitter.set_rung(rung)
        elif not self._rung_ignored:
            self._rung_ignored = True
            logger.info("camera %s encodes H.264 itself: it keeps its own rate", self._device)

    async def close(self) -> None:
        async with self._lock:
            container, self._container, self._pending = self._container, None, []
        if container is not None:
            await self._worker.run(container.close)
            logger.info("camera %s released", self._device)
        self._worker.shutdown()

    def _next_item(self) -> Any:
        """Blocking: the next packet (h264) or decoded frame (mjpeg)."""
        while True:
            if self._pending:
                return self._pending.pop(0)
            packet = next(self._container.demux(self._stream))
            if packet.size == 0:
                continue
            if self.encoded:
                return packet
            self._pending = [f.reformat(format="yuv420p") for f in packet.decode()]
