"""The Pi's CSI camera through picamera2 (imported lazily: it only exists on a Pi).

- ``h264`` (Pi 4): the VideoCore hardware encoder's Annex B output is passed to aiortc as
  ``av.Packet``s, never re-encoded. picamera2 calls ``outputframe`` in its encoder thread;
  the bytes reach the loop through ``call_soon_threadsafe``. ``repeat=True`` puts SPS/PPS
  in front of every keyframe and ``iperiod`` makes one every ``KEYFRAME_EVERY_S``: picamera2
  has no public "keyframe now" call, so that period bounds a PLI's wait.
- ``raw`` (Pi 5, which has no hardware encoder): ``capture_array`` of ``YUV420`` frames, in a
  worker thread, wrapped as ``yuv420p`` frames that aiortc encodes.
- ``auto``: ``h264`` on a Pi 4, ``raw`` otherwise (read from the device tree's model).
- The call's video rung (``set_rung``): the camera is stopped, configured at the rung's size
  and frame rate (the ISP scales, for free) and started again — with a new hardware
  encoder at the rung's bitrate in ``h264`` (picamera2 sets the V4L2 encoder's bitrate when
  it starts, so a new bitrate is a new encoder; its first picture is a keyframe with SPS/PPS).
  That takes one or two frame times; pictures of the old rung go on until then.

Not runnable on amd64 (no libcamera bindings): written against picamera2's documented API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Literal

import av
from av.stream import Stream

from appliance.errors import HardwareError
from appliance.hw._bridge import post_to_loop, short_error
from appliance.hw.pacing import VIDEO_TIME_BASE, WallClock, video_pts
from appliance.hw.ports import VideoRung
from appliance.hw.serial_worker import SerialWorker

logger = logging.getLogger(__name__)

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
KEYFRAME_EVERY_S = 1.0
H264_BITRATE = 2_000_000  # bits/s for the hardware encoder at 720p30
QUEUE_PICTURES = 30  # one second of backlog; older pictures are dropped, not buffered

Picamera2Encoding = Literal["auto", "h264", "raw"]


def board_has_h264_encoder(model_file: Path = DEVICE_TREE_MODEL) -> bool:
    """True on a Pi 4 (and older): the Pi 5 dropped the hardware H.264 encoder."""
    try:
        model = model_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "Raspberry Pi" in model and "Raspberry Pi 5" not in model


class Picamera2Source:
    def __init__(
        self,
        *,
        encoding: Picamera2Encoding = "auto",
        size: tuple[int, int] = (1280, 720),
        fps: int = 30,
        index: int = 0,
    ) -> None:
        self._wanted: Picamera2Encoding = encoding
        self._h264 = encoding == "h264"
        self._size = size
        self._fps = fps
        self._index = index
        self._camera: Any = None
        self._packets: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_PICTURES)
        self._clock = WallClock()
        self._worker = SerialWorker("picamera2")
        self._bitrate = H264_BITRATE
        self._restarting: asyncio.Task[None] | None = None
        self._wanted_rung: VideoRung | None = None
        self.rung: VideoRung | None = None  # the rung the camera runs at (None: as built)
        self.keyframe_requests = 0

    @property
    def encoded(self) -> bool:
        return self._h264

    async def open(self) -> None:
        if self._wanted == "auto":
            self._h264 = await self._worker.run(board_has_h264_encoder)
        loop = asyncio.get_running_loop()
        try:
            self._camera = await self._worker.run(self._start, loop)
        except ImportError as exc:
            raise HardwareError("picamera2 is not installed") from exc
        except Exception as exc:  # libcamera raises RuntimeError and worse
            raise HardwareError(f"Pi camera: {short_error(exc)}") from exc
        logger.info("Pi camera open (%s)", "hardware H.264" if self._h264 else "raw frames")

    async def read(self) -> av.VideoFrame | av.Packet[Stream]:
        if self._camera is None:
            raise HardwareError("Pi camera is closed")
        item: av.VideoFrame | av.Packet[Stream]
        if self._h264:
            item = av.Packet(await self._packets.get())
        else:
            array = await self._worker.run(self._camera.capture_array, "main")
            item = av.VideoFrame.from_ndarray(array, format="yuv420p")
        item.pts = video_pts(self._clock.elapsed())
        item.time_base = VIDEO_TIME_BASE
        return item

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        logger.debug(
            "keyframe requested; the next periodic one follows within %ss", KEYFRAME_EVERY_S
        )

    def set_rung(self, rung: VideoRung) -> None:
        self._wanted_rung = rung
        if self._camera is None:
            self._apply(rung)  # not open yet: open() starts at it
        elif self._restarting is None or self._restarting.done():
            self._restarting = asyncio.create_task(self._restart(), name="camera:rung")

    async def close(self) -> None:
        if self._restarting is not None:
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restarting
        camera, self._camera = self._camera, None
        if camera is not None:
            await self._worker.run(self._stop, camera)
            logger.info("Pi camera released")
        self._worker.shutdown()

    async def _restart(self) -> None:
        """Move the open camera to the rung wanted (again, if it changed meanwhile)."""
        while (rung := self._wanted_rung) is not None and rung != self.rung and self._camera:
            loop = asyncio.get_running_loop()
            try:
                await self._worker.run(self._reconfigure, self._camera, rung, loop)
            except Exception as exc:  # libcamera raises RuntimeError and worse
                logger.error("Pi camera cannot move to %s: %s", rung.name, short_error(exc))
                return

    def _apply(self, rung: VideoRung) -> None:
        self._size = (rung.width, rung.height)
        self._fps = rung.fps
        self._bitrate = rung.bitrate_bps
        self.rung = rung

    # --- blocking, in a worker thread --------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> Any:
        from picamera2 import Picamera2

        camera = Picamera2(self._index)
        try:
            self._configure_and_run(camera, loop)
        except BaseException:
            camera.close()
            raise
        return camera

    def _configure_and_run(self, camera: Any, loop: asyncio.AbstractEventLoop) -> None:
        config = camera.create_video_configuration(
            main={"size": self._size, "format": "YUV420"},
            controls={"FrameRate": float(self._fps)},
        )
        camera.configure(config)
        if self._h264:
            from picamera2.encoders import H264Encoder

            encoder = H264Encoder(
                bitrate=self._bitrate,
                repeat=True,
                iperiod=max(1, round(KEYFRAME_EVERY_S * self._fps)),
            )
            camera.start_recording(encoder, _queue_output(loop, self._offer))
        else:
            camera.start()

    def _reconfigure(self, camera: Any, rung: VideoRung, loop: asyncio.AbstractEventLoop) -> None:
        before = (self._size, self._fps, self._bitrate, self.rung)
        self._halt(camera)
        self._apply(rung)
        try:
            self._configure_and_run(camera, loop)
        except Exception:
            self._size, self._fps, self._bitrate, self.rung = before
            self._configure_and_run(camera, loop)  # back to what worked
            raise
        logger.info("Pi camera now at %s", rung.name)

    def _halt(self, camera: Any) -> None:
        if self._h264:
            camera.stop_recording()
        else:
            camera.stop()

    def _stop(self, camera: Any) -> None:
        try:
            self._halt(camera)
        finally:
            camera.close()

    # --- loop side -----------------------------------------------------------------------

    def _offer(self, data: bytes) -> None:
        if self._packets.full():
            self._packets.get_nowait()  # late reader: drop the oldest, stay live
        self._packets.put_nowait(data)


def _queue_output(loop: asyncio.AbstractEventLoop, deliver: Any) -> Any:
    """A picamera2 ``Output`` handing each encoded picture to ``deliver`` on ``loop``."""
    from picamera2.outputs import Output

    class _LoopOutput(Output):  # type: ignore[misc]
        def outputframe(
            self,
            frame: bytes,
            keyframe: bool = True,
            timestamp: int | None = None,
            packet: object = None,
            audio: bool = False,
        ) -> None:
            if not audio:
                post_to_loop(loop, deliver, bytes(frame))

    return _LoopOutput()
