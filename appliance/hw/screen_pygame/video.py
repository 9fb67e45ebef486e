"""Decoded video frames to pygame surfaces: converted and scaled in C by FFmpeg (swscale).

Never pixel by pixel in Python: a 1080p frame is 2 million pixels, 30 times a second, on
a Raspberry Pi. ``VideoReformatter`` keeps its swscale context between frames of the same
size, so each frame costs one scale+convert and one memory copy.
"""

from __future__ import annotations

import av
import numpy as np
import pygame
from av.video.reformatter import VideoReformatter

BYTES_PER_PIXEL = 3  # rgb24


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest size with ``width:height``'s aspect ratio inside the box (letterbox)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad frame size {width}x{height}")
    scale = min(box_w / width, box_h / height)
    return max(2, round(width * scale)), max(2, round(height * scale))


class FrameScaler:
    """Scales one video stream's frames to fit a box, as RGB surfaces."""

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()

    def surface(self, frame: av.VideoFrame, box: tuple[int, int]) -> pygame.Surface:
        width, height = fit(frame.width, frame.height, *box)
        rgb = self._reformatter.reformat(frame, width, height, format="rgb24")
        plane = rgb.planes[0]
        row = width * BYTES_PER_PIXEL
        if plane.line_size == row:
            pixels = bytes(plane)
        else:  # rows padded for alignment: drop the padding (a strided copy, in C)
            rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(height, plane.line_size)
            pixels = rows[:, :row].tobytes()
        return pygame.image.frombuffer(pixels, (width, height), "RGB")
