"""Audio frames in the one shape the speech chain works on: 48 kHz mono signed 16-bit.

PyAV frames arrive in whatever the device or decoder gives (aiortc's Opus decoder: 48 kHz
stereo s16 in 20 ms frames; ALSA: the card's format). ``MonoResampler`` turns any of them into
a numpy ``int16`` array; ``mono_frame`` makes a PyAV frame again, with its timestamp.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from appliance.errors import HardwareError

SAMPLE_RATE = 48_000  # Opus's and WebRTC's native rate: one resampling at most, at the edge
TIME_BASE = Fraction(1, SAMPLE_RATE)
MIN_RATE_HZ = 8_000  # below telephone quality a frame is a bug, not a microphone
MAX_RATE_HZ = 192_000  # the highest rate a USB sound card offers

Samples = npt.NDArray[np.int16]


class AudioFormatError(HardwareError):
    """A frame the speech chain cannot use (not audio, an impossible rate); it is dropped."""


def empty() -> Samples:
    return np.zeros(0, dtype=np.int16)


class MonoResampler:
    """Any PyAV audio frame → 48 kHz mono s16 samples. The resampler is rebuilt when the
    input's format, layout or rate changes (a device reopened with other settings)."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: object) -> Samples:
        if not isinstance(frame, av.AudioFrame):
            raise AudioFormatError(f"expected an audio frame, got {type(frame).__name__}")
        rate = frame.sample_rate
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise AudioFormatError(f"unusable sample rate {rate} Hz")
        if frame.samples == 0:
            return empty()
        key = (frame.format.name, frame.layout.name, rate)
        if self._resampler is None or key != self._input:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            self._input = key
        try:
            out = self._resampler.resample(frame)
        except (av.FFmpegError, ValueError) as exc:
            raise AudioFormatError(f"cannot resample a {key} frame: {exc}") from exc
        parts = [np.asarray(f.to_ndarray(), dtype=np.int16).reshape(-1) for f in out]
        return np.concatenate(parts) if parts else empty()


def mono_frame(samples: Samples, pts: int | None) -> av.AudioFrame:
    """A 48 kHz mono s16 PyAV frame of ``samples``, ``pts`` in 1/48000 s."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def pts_48k(frame: av.AudioFrame) -> int | None:
    """The frame's timestamp in 1/48000 s, or None if it has none."""
    if frame.pts is None or frame.time_base is None:
        return None
    return round(frame.pts * frame.time_base * SAMPLE_RATE)


class SampleClock:
    """The timestamp of each sample that leaves a buffering stage, from the input frames'
    timestamps: samples are counted, and a jump in the input (a source that skipped, a paced
    source that fell behind) moves the count by the same amount."""

    GAP_SAMPLES = 960  # more than 20 ms away from where the count expects: a real jump

    def __init__(self) -> None:
        self._origin: int | None = None
        self._expected: int | None = None
        self._emitted = 0

    def arrived(self, pts: int | None, samples: int) -> None:
        if self._origin is None or self._expected is None:
            self._origin = pts if pts is not None else 0
            self._expected = self._origin
        elif pts is not None and abs(pts - self._expected) > self.GAP_SAMPLES:
            self._origin += pts - self._expected
            self._expected = pts
        self._expected += samples

    def take(self, samples: int) -> int:
        """The timestamp of the next ``samples`` leaving the stage."""
        pts = (self._origin or 0) + self._emitted
        self._emitted += samples
        return pts
