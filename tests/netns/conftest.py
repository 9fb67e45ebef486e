"""Fixtures of the call tests run in the loopback network namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appliance.hw.screen_pygame.adapter import PygameScreen


@pytest.fixture
def dummy_screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[PygameScreen]:
    """The real pygame screen on SDL's dummy driver, 720p; its render thread must survive."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    screen = PygameScreen(driver="dummy", size=(1280, 720))
    yield screen
    screen.close()
    assert screen.failure is None, "the render thread died"
