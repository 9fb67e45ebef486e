"""Microphone and loudspeaker through PyAV (ALSA or PulseAudio/PipeWire), and a test tone.

- ``ToneSource``: a 440 Hz sine from ``lavfi`` at 48 kHz, paced in real time (20 ms frames).
- ``PyavAudioSource``: capture from ``av.open(device, format="alsa" | "pulse")``; the
  sound card paces it, the read blocks in a worker thread.
- ``PyavAudioSink``: playback by muxing PCM into the ``alsa``/``pulse`` output device; each
  write blocks (in a worker thread) for as long as the device buffer is full.
- ``NullAudioSink``: counts what it is given (no loudspeaker; tests).

Each is opened at the start of a call and closed at its end: no device stays held.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from typing import Any, Literal

import av

from appliance.errors import HardwareError
from appliance.hw._bridge import short_error
from appliance.hw.pacing import Pacer
from appliance.hw.pyav_input import PyavInput
from appliance.hw.serial_worker import SerialWorker

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000  # Opus's native rate: no resampling on the way out
FRAME_SAMPLES = 960  # 20 ms: Opus's frame duration
TONE_HZ = 440
AudioBackend = Literal["alsa", "pulse"]


def _audio_error(what: str, exc: BaseException) -> HardwareError:
    return HardwareError(f"{what}: {short_error(exc)}")


class ToneSource:
    """A continuous 440 Hz tone, 20 ms per frame: a test signal, not speech (Opus's voice
    detector takes a steady tone for background noise and DTX would send almost none of it)."""

    speech = False

    def __init__(self, *, frequency_hz: int = TONE_HZ) -> None:
        self._frequency_hz = frequency_hz
        self._pacer = Pacer(FRAME_SAMPLES / SAMPLE_RATE)
        self._input = PyavInput("audio")

    async def open(self) -> None:
        spec = (
            f"sine=frequency={self._frequency_hz}:sample_rate={SAMPLE_RATE}"
            f":samples_per_frame={FRAME_SAMPLES}"
        )
        await self._input.open(spec, format="lavfi", media="audio")

    async def read(self) -> av.AudioFrame:
        elapsed = await self._pacer.tick()
        frame: av.AudioFrame = await self._input.next_frame(closed="test tone is closed")
        frame.pts = round(elapsed * SAMPLE_RATE)
        frame.time_base = Fraction(1, SAMPLE_RATE)
        return frame

    async def close(self) -> None:
        await self._input.close()


class PyavAudioSource:
    """The microphone: ``device`` is an ALSA PCM ("default", "hw:1,0") or a Pulse source."""

    speech = True

    def __init__(self, backend: AudioBackend, device: str = "default") -> None:
        self._backend: AudioBackend = backend
        self._device = device
        self._samples = 0
        self._input = PyavInput("audio")

    async def open(self) -> None:
        options = {"sample_rate": str(SAMPLE_RATE), "channels": "1"}
        try:
            await self._input.open(
                self._device, format=self._backend, media="audio", options=options
            )
        except (av.FFmpegError, OSError) as exc:
            raise _audio_error(f"microphone {self._backend}:{self._device}", exc) from exc
        logger.info("microphone %s:%s open", self._backend, self._device)

    async def read(self) -> av.AudioFrame:
        try:
            frame: av.AudioFrame = await self._input.next_frame(closed="microphone is closed")
        except (av.FFmpegError, OSError, StopIteration) as exc:
            raise _audio_error(f"microphone {self._backend}:{self._device}", exc) from exc
        frame.pts = self._samples
        frame.time_base = Fraction(1, frame.sample_rate)
        self._samples += frame.samples
        return frame

    async def close(self) -> None:
        if await self._input.close():
            logger.info("microphone released")


class PyavAudioSink:
    """The loudspeaker: 48 kHz stereo PCM written to an ALSA PCM or a Pulse sink."""

    def __init__(self, backend: AudioBackend, device: str = "default") -> None:
        self._backend: AudioBackend = backend
        self._device = device
        self._container: Any = None
        self._stream: Any = None
        self._resampler: Any = None
        self._lock = asyncio.Lock()
        self._worker = SerialWorker("audio")

    async def open(self) -> None:
        try:
            await self._worker.run(self._open)
        except (av.FFmpegError, OSError) as exc:
            raise _audio_error(f"loudspeaker {self._backend}:{self._device}", exc) from exc
        logger.info("loudspeaker %s:%s open", self._backend, self._device)

    def _open(self) -> None:
        container: Any = av.open(self._device, "w", format=self._backend)
        self._stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="stereo")
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        self._container = container

    async def play(self, frame: av.AudioFrame) -> None:
        async with self._lock:
            if self._container is None:
                return  # closed: the call is over, late frames are dropped
            try:
                await self._worker.run(self._write, frame)
            except (av.FFmpegError, OSError) as exc:
                raise _audio_error(f"loudspeaker {self._backend}:{self._device}", exc) from exc

    def _write(self, frame: av.AudioFrame) -> None:
        for resampled in self._resampler.resample(frame):
            resampled.pts = None  # the device plays in arrival order
            for packet in self._stream.encode(resampled):
                self._container.mux(packet)

    async def close(self) -> None:
        async with self._lock:
            container, self._container = self._container, None
        if container is not None:
            await self._worker.run(container.close)
            logger.info("loudspeaker released")
        self._worker.shutdown()


class NullAudioSink:
    """No loudspeaker: frames are counted and dropped."""

    def __init__(self) -> None:
        self.frames_played = 0
        self.is_open = False
        self.played = asyncio.Event()

    async def open(self) -> None:
        self.is_open = True

    async def play(self, frame: av.AudioFrame) -> None:
        self.frames_played += 1
        self.played.set()

    async def close(self) -> None:
        self.is_open = False
