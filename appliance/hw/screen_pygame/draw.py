"""Drawing helpers: fonts, wrapped centred text, and pictograms made of pygame primitives."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pygame

from appliance.hw.screen_pygame.theme import BLACK, MARGIN, REFERENCE_HEIGHT, WHITE, YELLOW, Colour

logger = logging.getLogger(__name__)

# DejaVu Sans (Debian's fonts-dejavu-core) has every French glyph and open letter shapes;
# pygame's bundled freesansbold is the fallback when it is not installed.
FONT_FILES = {
    True: Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    False: Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
}
TEXT_CACHE_MAX = 256  # rendered lines kept: every text of every state, several sizes
LINE_SPACING = 1.15  # of the font's height
MIN_SHRINK = 0.7  # long texts are set smaller, but never below this share of their size


class Fonts:
    """Fonts by size and weight, and rendered lines of text, cached."""

    def __init__(self) -> None:
        self._paths: dict[bool, str | None] = {
            bold: (str(path) if path.exists() else None) for bold, path in FONT_FILES.items()
        }
        if None in self._paths.values():
            logger.warning("DejaVu Sans not found: using pygame's default font")
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._lines: dict[tuple[str, int, bool, Colour], pygame.Surface] = {}

    def font(self, px: int, *, bold: bool) -> pygame.font.Font:
        key = (px, bold)
        if key not in self._fonts:
            self._fonts[key] = pygame.font.Font(self._paths[bold], px)
        return self._fonts[key]

    def line(self, text: str, px: int, *, bold: bool, colour: Colour) -> pygame.Surface:
        key = (text, px, bold, colour)
        if key not in self._lines:
            if len(self._lines) >= TEXT_CACHE_MAX:
                self._lines.clear()
            self._lines[key] = self.font(px, bold=bold).render(text, True, colour)
        return self._lines[key]


def wrap(font: pygame.font.Font, text: str, max_width: int) -> list[str]:
    """Split ``text`` into lines no wider than ``max_width`` (a lone long word stays whole)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and font.size(candidate)[0] > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


class Canvas:
    """The display surface with sizes in 1080-line units; records where text was drawn."""

    def __init__(self, surface: pygame.Surface, fonts: Fonts) -> None:
        self.surface = surface
        self.fonts = fonts
        self.width, self.height = surface.get_size()
        self.scale = self.height / REFERENCE_HEIGHT
        self.text_rects: list[pygame.Rect] = []
        self.caption_rows: list[tuple[str, pygame.Rect]] = []  # the agent's typed lines
        self.typing_rows: list[tuple[str, pygame.Rect]] = []  # the citizen's line being typed

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))

    @property
    def centre_x(self) -> int:
        return self.width // 2

    def text(
        self,
        text: str,
        *,
        size: int,
        top: float,
        colour: Colour = WHITE,
        bold: bool = False,
        max_lines: int = 2,
    ) -> int:
        """Draw ``text`` centred and wrapped, its first line's top at ``top`` (1080 units).

        Text that would take more than ``max_lines`` lines is set smaller (down to
        ``MIN_SHRINK`` of ``size``). Returns the bottom of the last line, in 1080 units.
        """
        px, lines, font = self._fit(text, self.px(size), bold=bold, max_lines=max_lines)
        y = self.px(top)
        step = round(font.get_linesize() * LINE_SPACING)
        for line in lines:
            rendered = self.fonts.line(line, px, bold=bold, colour=colour)
            rect = rendered.get_rect(midtop=(self.centre_x, y))
            self.surface.blit(rendered, rect)
            self.text_rects.append(rect)
            y += step
        return round(y / self.scale)

    def _fit(
        self, text: str, px: int, *, bold: bool, max_lines: int
    ) -> tuple[int, list[str], pygame.font.Font]:
        floor = round(px * MIN_SHRINK)
        while True:
            font = self.fonts.font(px, bold=bold)
            lines = wrap(font, text, self.width - 2 * self.px(MARGIN))
            if len(lines) <= max_lines or px <= floor:
                return px, lines, font
            px = max(floor, round(px * 0.9))


def call_button(canvas: Canvas, centre_y: float, radius: float) -> None:
    """The big round call button seen from above, with an arrow pointing down to it."""
    surface, r = canvas.surface, canvas.px(radius)
    cx, cy = canvas.centre_x, canvas.px(centre_y)
    pygame.draw.circle(surface, (60, 66, 74), (cx, cy), r)  # the bezel
    pygame.draw.circle(surface, (30, 160, 90), (cx, cy), round(r * 0.78))  # the lit cap
    pygame.draw.circle(surface, (90, 210, 140), (cx, cy), round(r * 0.62))
    pygame.draw.circle(surface, WHITE, (cx, cy), r, width=max(2, r // 18))
    shine = pygame.Rect(0, 0, round(r * 0.55), round(r * 0.28))
    shine.center = (cx - round(r * 0.18), cy - round(r * 0.32))
    pygame.draw.ellipse(surface, (170, 240, 200), shine)
    for side in (-1, 1):  # two arrows, left and right of the button, pointing down
        ax = cx + side * round(r * 1.9)
        _down_arrow(surface, ax, cy - round(r * 0.6), round(r * 1.2), round(r * 0.5))


def _down_arrow(surface: pygame.Surface, x: int, top: int, length: int, width: int) -> None:
    shaft = pygame.Rect(0, 0, width // 3, length - width // 2)
    shaft.midtop = (x, top)
    pygame.draw.rect(surface, YELLOW, shaft)
    tip = top + length
    head = [(x - width // 2, shaft.bottom), (x + width // 2, shaft.bottom), (x, tip)]
    pygame.draw.polygon(surface, YELLOW, head)


def spinner(canvas: Canvas, centre_y: float, radius: float, elapsed_s: float) -> None:
    """Twelve dots in a ring, one bright dot going round once every three seconds."""
    cx, cy, r = canvas.centre_x, canvas.px(centre_y), canvas.px(radius)
    lead = int(elapsed_s * 4) % 12
    for i in range(12):
        angle = 2 * math.pi * i / 12 - math.pi / 2
        behind = (lead - i) % 12
        shade = max(70, 255 - behind * 30)
        dot = (round(cx + r * math.cos(angle)), round(cy + r * math.sin(angle)))
        pygame.draw.circle(canvas.surface, (shade, shade, shade), dot, max(3, r // 7))


def check_mark(canvas: Canvas, centre_y: float, radius: float, colour: Colour) -> None:
    """A white disc with a tick cut out in ``colour`` (the background's)."""
    cx, cy, r = canvas.centre_x, canvas.px(centre_y), canvas.px(radius)
    pygame.draw.circle(canvas.surface, WHITE, (cx, cy), r)
    points = [
        (cx - round(r * 0.5), cy + round(r * 0.02)),
        (cx - round(r * 0.12), cy + round(r * 0.4)),
        (cx + round(r * 0.52), cy - round(r * 0.36)),
    ]
    width = max(4, r // 5)
    pygame.draw.lines(canvas.surface, colour, False, points, width=width)
    for point in points:  # round the joints and ends
        pygame.draw.circle(canvas.surface, colour, point, width // 2)


def clock(canvas: Canvas, centre_y: float, radius: float) -> None:
    cx, cy, r = canvas.centre_x, canvas.px(centre_y), canvas.px(radius)
    pygame.draw.circle(canvas.surface, WHITE, (cx, cy), r, width=max(3, r // 9))
    for i in range(12):
        angle = 2 * math.pi * i / 12
        outer = (cx + r * 0.78 * math.cos(angle), cy + r * 0.78 * math.sin(angle))
        inner = (cx + r * 0.66 * math.cos(angle), cy + r * 0.66 * math.sin(angle))
        pygame.draw.line(canvas.surface, WHITE, inner, outer, width=max(2, r // 22))
    hand = max(3, r // 10)
    pygame.draw.line(canvas.surface, YELLOW, (cx, cy), (cx, cy - round(r * 0.55)), width=hand)
    pygame.draw.line(canvas.surface, YELLOW, (cx, cy), (cx + round(r * 0.4), cy), width=hand)
    pygame.draw.circle(canvas.surface, YELLOW, (cx, cy), hand)


def warning_sign(canvas: Canvas, centre_y: float, radius: float) -> None:
    """A yellow triangle with a black exclamation mark."""
    cx, cy, r = canvas.centre_x, canvas.px(centre_y), canvas.px(radius)
    corners = [
        (cx, cy - r),
        (cx - round(r * 1.15), cy + round(r * 0.85)),
        (cx + round(r * 1.15), cy + round(r * 0.85)),
    ]
    pygame.draw.polygon(canvas.surface, YELLOW, corners)
    bar = pygame.Rect(0, 0, max(4, r // 6), round(r * 0.85))
    bar.midtop = (cx, cy - round(r * 0.45))
    pygame.draw.rect(canvas.surface, BLACK, bar)
    pygame.draw.circle(canvas.surface, BLACK, (cx, cy + round(r * 0.62)), max(3, r // 9))
