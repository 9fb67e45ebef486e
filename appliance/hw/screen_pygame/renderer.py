"""The screen's state and when it needs drawing; draws the current scene on a surface.

Used only inside the screen adapter's render thread: nothing here is thread-safe.
"""

from __future__ import annotations

import av
import pygame

from appliance.hw.ports import ScreenInfo, ScreenState
from appliance.hw.screen_pygame import scenes
from appliance.hw.screen_pygame.draw import Canvas, Fonts
from appliance.hw.screen_pygame.theme import BACKGROUND
from appliance.hw.screen_pygame.video import FrameScaler

ANIMATION_S = 0.25  # the waiting spinner moves (and the timer is re-read) four times a second
ANIMATED = frozenset({ScreenState.WAITING, ScreenState.ENROLMENT})  # their spinner turns
SELF_VIEW_FRACTION = 0.22  # the self-view box: this share of the screen's width and height


class Renderer:
    def __init__(self, surface: pygame.Surface, fonts: Fonts | None = None) -> None:
        self.surface = surface
        self.fonts = fonts or Fonts()
        self.state = ScreenState.IDLE
        self.info: ScreenInfo = {}
        self._since = 0.0
        self._drawn_at: float | None = None  # None: must draw
        self._video: pygame.Surface | None = None
        self._self_view: pygame.Surface | None = None
        self._scaler = FrameScaler()
        self._self_scaler = FrameScaler()
        self.text_rects: list[pygame.Rect] = []
        self.caption_rows: list[tuple[str, pygame.Rect]] = []  # the typed lines last drawn
        self.typing_rows: list[tuple[str, pygame.Rect]] = []  # the citizen's input line

    def show(self, state: ScreenState, info: ScreenInfo, at: float) -> None:
        if state != self.state:
            self._video = self._self_view = None  # never a stale face on the next call
            self._since = at
        self.state, self.info = state, info
        self._drawn_at = None

    def frame(self, frame: av.VideoFrame, *, self_view: bool) -> bool:
        """Take a frame (converting it); False if the state shows no video."""
        if self.state != ScreenState.IN_CALL:
            return False
        width, height = self.surface.get_size()
        if self_view:
            box = (round(width * SELF_VIEW_FRACTION), round(height * SELF_VIEW_FRACTION))
            self._self_view = self._self_scaler.surface(frame, box)
        else:
            self._video = self._scaler.surface(frame, (width, height))
        self._drawn_at = None
        return True

    def due_in(self, now: float) -> float | None:
        """Seconds until the next draw is needed (0: now), or None if nothing changes."""
        if self._drawn_at is None:
            return 0.0
        if self.state in ANIMATED:
            return max(0.0, self._drawn_at + ANIMATION_S - now)
        return None

    def draw(self, now: float) -> None:
        self.surface.fill(BACKGROUND[self.state])
        canvas = Canvas(self.surface, self.fonts)
        if self.state == ScreenState.IN_CALL:
            scenes.in_call(
                canvas,
                self._video,
                self._self_view,
                self.info.get("document"),
                headset=self.info.get("headset", False),
                caption=self.info.get("caption"),
                typing=self.info.get("typing"),
                typed=self.info.get("typed"),
            )
        else:
            scenes.SCENES[self.state](canvas, self.info, max(0.0, now - self._since))
        self.text_rects = canvas.text_rects
        self.caption_rows = canvas.caption_rows
        self.typing_rows = canvas.typing_rows
        self._drawn_at = now
