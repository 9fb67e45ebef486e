"""Raw frames fitted to the current video rung: scaled down and thinned to its frame rate.

Raw sources (a test pattern, a webcam's MJPEG decoded, the Pi 5's camera) hand frames to
aiortc's encoder, which encodes whatever size and rate it is given. ``RawRungFitter`` is
the one place that makes those frames match the rung the call's adaptation chose
(``appliance.call.adaptation``); the encoder's bitrate is set on the sender's side.
"""

from __future__ import annotations

import av

from appliance.hw.ports import VideoRung

EPSILON_S = 0.002  # a frame this early for its slot still counts (camera clocks wobble)


class RawRungFitter:
    """Says which frames to keep (``keep``) and scales the kept ones (``fit``)."""

    def __init__(self, size: tuple[int, int], fps: int) -> None:
        self._size = size
        self._fps = fps
        self._next_s: float | None = None
        self.rung: VideoRung | None = None

    def set_rung(self, rung: VideoRung) -> None:
        self.rung = rung
        self._next_s = None  # the next frame starts the new rhythm

    def keep(self, elapsed_s: float) -> bool:
        """True if the frame at stream time ``elapsed_s`` belongs to the rung's frame rate."""
        rung = self.rung
        if rung is None or rung.fps >= self._fps:
            return True
        if self._next_s is not None and elapsed_s + EPSILON_S < self._next_s:
            return False
        period = 1 / rung.fps
        if self._next_s is None or elapsed_s - self._next_s > period:
            self._next_s = elapsed_s  # first frame, or the source fell behind: re-anchor
        self._next_s += period
        return True

    def fit(self, frame: av.VideoFrame) -> av.VideoFrame:
        rung = self.rung
        if rung is None or (frame.width, frame.height) == (rung.width, rung.height):
            return frame
        if rung.width > frame.width or rung.height > frame.height:
            return frame  # never upscale: a rung above the camera keeps its size
        fitted = frame.reformat(width=rung.width, height=rung.height, format="yuv420p")
        fitted.pts, fitted.time_base = frame.pts, frame.time_base
        return fitted
