"""One call's speech processing: libwebrtc's audio processing module (APM) through LiveKit's
Python SDK (``livekit.rtc.AudioProcessingModule``).

The APM is the one Chromium runs: AEC3 echo cancellation, noise suppression, automatic gain
control and a high-pass filter. It works on 10 ms blocks of 48 kHz mono s16:

- ``process_capture``: the microphone's samples, echo removed (the *near end*);
- ``analyse_playback``: what the loudspeaker is about to play, the agent's voice (the *far
  end*), which AEC3 looks for in the microphone.

Both take any number of samples and buffer up to one block; ``process_capture`` returns what
is ready (at most 10 ms behind). They may be called from two threads (the microphone's and
the loudspeaker's): a lock keeps one APM call at a time. ``livekit`` is imported here only
(it loads a native library), so ``import appliance`` works without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from appliance.errors import HardwareError
from appliance.hw.audio.frames import SAMPLE_RATE, Samples, empty

if TYPE_CHECKING:
    from livekit import rtc

_T = TypeVar("_T")

BLOCK_SAMPLES = SAMPLE_RATE // 100  # the APM's 10 ms block
# Loudspeaker buffer + air + microphone buffer, a first guess for AEC3's delay search, which
# then finds the real delay itself (up to several hundred ms) within a second or two.
STREAM_DELAY_MS = 50


class AudioProcessingError(HardwareError):
    """The audio processing module could not be made, or refused a block."""


def load() -> str | None:
    """Import the SDK now (its native library takes a moment: at start, not at the first
    call); the reason it cannot be used, or None."""
    try:
        from livekit import rtc  # noqa: F401
    except ImportError as exc:
        return f"livekit (WebRTC audio processing): {exc}"
    return None


class WebrtcAudioProcessing:
    """AEC3 + noise suppression + gain control + high-pass filter, for one call."""

    def __init__(
        self,
        *,
        stream_delay_ms: int = STREAM_DELAY_MS,
        noise_suppression: bool = True,
        gain_control: bool = True,
    ) -> None:
        try:
            from livekit import rtc
        except ImportError as exc:  # the wheel is missing or its native library failed
            raise AudioProcessingError(f"livekit (WebRTC audio processing): {exc}") from exc
        self._rtc = rtc
        try:
            self._apm = rtc.AudioProcessingModule(
                echo_cancellation=True,
                noise_suppression=noise_suppression,
                high_pass_filter=True,
                auto_gain_control=gain_control,
            )
        except Exception as exc:  # the FFI's own error types: translated at the boundary
            raise AudioProcessingError(f"audio processing module: {exc}") from exc
        self._delay_ms = stream_delay_ms
        self._lock = threading.Lock()
        self._capture = empty()
        self._playback = empty()
        self.blocks_processed = 0
        self.blocks_analysed = 0

    def process_capture(self, samples: Samples) -> Samples:
        """The microphone's next samples → the processed samples that are ready."""
        self._capture = np.concatenate([self._capture, samples])
        ready = len(self._capture) - len(self._capture) % BLOCK_SAMPLES
        out = np.empty(ready, dtype=np.int16)
        for start in range(0, ready, BLOCK_SAMPLES):
            block = self._frame(self._capture[start : start + BLOCK_SAMPLES])
            with self._lock:
                self._call(self._apm.set_stream_delay_ms, self._delay_ms)
                self._call(self._apm.process_stream, block)
            out[start : start + BLOCK_SAMPLES] = np.frombuffer(block.data, dtype=np.int16)
            self.blocks_processed += 1
        self._capture = self._capture[ready:]
        return out

    def analyse_playback(self, samples: Samples) -> None:
        """What the loudspeaker plays next (the echo to look for)."""
        self._playback = np.concatenate([self._playback, samples])
        ready = len(self._playback) - len(self._playback) % BLOCK_SAMPLES
        for start in range(0, ready, BLOCK_SAMPLES):
            block = self._frame(self._playback[start : start + BLOCK_SAMPLES])
            with self._lock:
                self._call(self._apm.process_reverse_stream, block)
            self.blocks_analysed += 1
        self._playback = self._playback[ready:]

    def _frame(self, block: Samples) -> rtc.AudioFrame:
        data = bytearray(np.ascontiguousarray(block, dtype=np.int16).tobytes())
        return self._rtc.AudioFrame(data, SAMPLE_RATE, 1, BLOCK_SAMPLES)

    @staticmethod
    def _call(method: Callable[[_T], None], argument: _T) -> None:
        try:
            method(argument)
        except RuntimeError as exc:  # what the SDK raises for an FFI error
            raise AudioProcessingError(f"audio processing: {exc}") from exc
