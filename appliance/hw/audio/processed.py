"""The microphone and the loudspeaker of one call, through that call's speech processing.

``ProcessedMicrophone`` (an ``AudioSource``) reads the real microphone and returns 20 ms
frames of 48 kHz mono s16 with the agent's voice removed, the noise reduced and the level
evened out. ``ProcessedSpeaker`` (an ``AudioSink``) shows each frame of the agent's voice to
the same ``WebrtcAudioProcessing`` just before the loudspeaker plays it, so the echo
canceller knows what to look for. Both run the processing in their own worker thread.

A frame the chain cannot use (not audio, an impossible rate) is dropped with one warning per
call: the citizen loses 20 ms, not the call.
"""

from __future__ import annotations

import logging

import av
import numpy as np

from appliance.hw.audio.frames import (
    AudioFormatError,
    MonoResampler,
    SampleClock,
    empty,
    mono_frame,
    pts_48k,
)
from appliance.hw.audio.webrtc import WebrtcAudioProcessing
from appliance.hw.ports import AudioSink, AudioSource
from appliance.hw.serial_worker import SerialWorker

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 960  # 20 ms out, what the Opus encoder takes


class _Dropped:
    """Counts unusable frames; says so once."""

    def __init__(self, where: str) -> None:
        self._where = where
        self.count = 0

    def __call__(self, exc: AudioFormatError) -> None:
        self.count += 1
        if self.count == 1:
            logger.warning("%s: frame dropped: %s", self._where, exc)


class ProcessedMicrophone:
    def __init__(self, source: AudioSource, processing: WebrtcAudioProcessing) -> None:
        self._source = source
        self._processing = processing
        self._resampler = MonoResampler()
        self._clock = SampleClock()
        self._ready = empty()
        self._worker = SerialWorker("audio-apm")
        self.dropped = _Dropped("microphone")

    @property
    def speech(self) -> bool:
        return self._source.speech

    async def open(self) -> None:
        await self._source.open()

    async def read(self) -> av.AudioFrame:
        while len(self._ready) < FRAME_SAMPLES:
            frame = await self._source.read()
            try:
                samples = self._resampler.convert(frame)
            except AudioFormatError as exc:
                self.dropped(exc)
                continue
            self._clock.arrived(pts_48k(frame), len(samples))
            processed = await self._worker.run(self._processing.process_capture, samples)
            self._ready = np.concatenate([self._ready, processed])
        block, self._ready = self._ready[:FRAME_SAMPLES], self._ready[FRAME_SAMPLES:]
        return mono_frame(block, self._clock.take(FRAME_SAMPLES))

    async def close(self) -> None:
        try:
            await self._source.close()
        finally:
            self._worker.shutdown()


class ProcessedSpeaker:
    def __init__(self, sink: AudioSink, processing: WebrtcAudioProcessing) -> None:
        self._sink = sink
        self._processing = processing
        self._resampler = MonoResampler()
        self._worker = SerialWorker("audio-apm-far")
        self.dropped = _Dropped("loudspeaker")

    async def open(self) -> None:
        await self._sink.open()

    async def play(self, frame: av.AudioFrame) -> None:
        try:
            samples = self._resampler.convert(frame)
        except AudioFormatError as exc:
            self.dropped(exc)
            return
        await self._worker.run(self._processing.analyse_playback, samples)
        await self._sink.play(frame)

    async def close(self) -> None:
        try:
            await self._sink.close()
        finally:
            self._worker.shutdown()
