"""Shared by the screen tests: a live ``PygameScreen`` on SDL's dummy driver, pixel readers."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from appliance.hw.screen_pygame.adapter import PygameScreen

SIZE = (1280, 720)
Pixels = np.ndarray[tuple[int, int, int], np.dtype[np.uint8]]


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[PygameScreen]:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # restored after the test
    live = PygameScreen(driver="dummy", size=SIZE)
    yield live
    live.close()
    assert not live.running
    assert live.failure is None, "the render thread died"


def shot(screen: PygameScreen, path: Path) -> Pixels:
    """Screenshot → pixels as rows × columns × RGB."""
    screen.screenshot(path)
    surface = pygame.image.load(str(path))
    pixels: Pixels = pygame.surfarray.array3d(surface).swapaxes(0, 1)
    return pixels


def dominant(pixels: Pixels) -> tuple[int, int, int]:
    flat = pixels.reshape(-1, 3)[::7]  # a sample is plenty: backgrounds cover most pixels
    r, g, b = Counter(map(tuple, flat.tolist())).most_common(1)[0][0]
    return (r, g, b)


def solid_frame(
    width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int] | None = None
) -> av.VideoFrame:
    """A frame whose left half is ``left`` and right half ``right`` (same if not given)."""
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = left
    array[:, width // 2 :] = right or left
    return av.VideoFrame.from_ndarray(array, format="rgb24")


def close_to(pixel: Pixels, colour: tuple[int, int, int], tolerance: int = 6) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))
