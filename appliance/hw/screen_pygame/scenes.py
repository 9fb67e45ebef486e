"""One drawing function per screen state; layouts in 1080-line units, centred.

Each function draws a whole screen on a ``Canvas`` already filled with the state's
background. ``elapsed_s`` is the time since the state was shown (the waiting timer and
spinner use it).
"""

from __future__ import annotations

from collections.abc import Callable

import pygame

from appliance.hw.ports import ScreenInfo, ScreenState
from appliance.hw.screen_pygame import choosing, texts
from appliance.hw.screen_pygame.draw import (
    LINE_SPACING,
    Canvas,
    call_button,
    check_mark,
    clock,
    spinner,
    warning_sign,
    wrap,
)
from appliance.hw.screen_pygame.theme import (
    BACKGROUND,
    BLACK,
    BODY,
    EMPHASIS,
    HEADLINE,
    HINT,
    HINT_GREY,
    MARGIN,
    SOFT_WHITE,
    TITLE,
    WHITE,
    YELLOW,
)
from appliance.hw.screen_pygame.typing_panel import typing_panel

HINT_BACKDROP = (0, 0, 0, 170)  # translucent black under the hang-up hint
CAPTION_ROWS = 4  # the agent's typed lines: at most this many rows, the newest at the bottom
CAPTION_BOTTOM = 780  # 1080 units: above the self-view box (≈ 806 to 1048)
CAPTION_PAD = 24  # around the rows, on the opaque black panel (white on black: 21:1)
CAPTION_ROWS_TYPING = 2  # … fewer above the citizen's input line, when they type
PANEL_GAP = 16  # 1080 units between the agent's lines and the citizen's input line


def idle(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    y = canvas.text(texts.WELCOME, size=TITLE, top=70, bold=True)
    y = canvas.text(texts.CONNECTS_YOU_WITH, size=BODY, top=y + 30, colour=SOFT_WHITE)
    service = info.get("service") or texts.ANY_SERVICE
    canvas.text(service, size=EMPHASIS, top=y + 10, colour=YELLOW, bold=True)
    call_button(canvas, centre_y=690, radius=130)
    canvas.text(texts.PRESS_THE_BUTTON, size=TITLE, top=880, bold=True)


def waiting(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    y = canvas.text(texts.CALLING, size=HEADLINE, top=90, bold=True)
    if service := info.get("service"):
        canvas.text(service, size=BODY, top=y + 10, colour=YELLOW, bold=True)
    spinner(canvas, centre_y=530, radius=110, elapsed_s=elapsed_s)
    waited = texts.mm_ss(info.get("waited_s", 0.0) + elapsed_s)
    standing = texts.queue_position(info.get("position"))
    top = 690 if standing else 720
    y = canvas.text(f"{texts.WAITED} : {waited}", size=EMPHASIS, top=top, bold=True)
    if standing:
        wait = texts.estimate(info, spoken=False)
        line = f"{standing} {wait}" if wait else standing
        y = canvas.text(line, size=BODY, top=y + 15, colour=YELLOW, bold=True)
    canvas.text(texts.STAY, size=BODY, top=y + 30 if standing else 850, colour=SOFT_WHITE)


def ended(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    check_mark(canvas, centre_y=330, radius=150, colour=BACKGROUND[ScreenState.ENDED])
    y = canvas.text(texts.THANKS, size=TITLE, top=540, bold=True)
    if reason := info.get("reason"):
        y = canvas.text(texts.reason_text(reason), size=BODY, top=y + 20, colour=SOFT_WHITE)
    canvas.text(texts.SEE_YOU, size=BODY, top=y + 40, colour=SOFT_WHITE)


def missed(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    clock(canvas, centre_y=200, radius=110)
    y = canvas.text(texts.NOBODY, size=HEADLINE, top=350, bold=True)
    if reason := info.get("reason"):
        y = canvas.text(texts.reason_text(reason), size=BODY, top=y + 10, colour=SOFT_WHITE)
    if opening := info.get("next_opening"):
        y = canvas.text(
            f"{texts.NEXT_OPENING} {opening}", size=BODY, top=y + 30, colour=YELLOW, bold=True
        )
    if phone := info.get("phone"):
        y = canvas.text(f"{texts.CALL_INSTEAD} {phone}", size=BODY, top=y + 10, bold=True)
    canvas.text(texts.ASK_RECEPTION, size=EMPHASIS, top=y + 40, colour=YELLOW, bold=True)


def out_of_service(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    warning_sign(canvas, centre_y=230, radius=130)
    y = canvas.text(texts.UNAVAILABLE, size=HEADLINE, top=420, bold=True)
    if reason := info.get("reason"):
        y = canvas.text(texts.reason_text(reason), size=BODY, top=y + 30, colour=SOFT_WHITE)
    canvas.text(texts.TELL_RECEPTION, size=EMPHASIS, top=y + 60, colour=YELLOW, bold=True)


def enrolment(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    """First start: asking to join, then waiting for the Pays with the request's code."""
    y = canvas.text(texts.ENROLMENT_TITLE, size=BODY, top=60, colour=SOFT_WHITE)
    code = info.get("code", "")
    title = texts.ENROLMENT_WAITING if code else (info.get("reason") or texts.ENROLMENT_ASKING)
    y = canvas.text(title, size=HEADLINE, top=y + 30, bold=True)
    if counter := info.get("counter"):
        y = canvas.text(f"guichet « {counter} »", size=BODY, top=y + 10, colour=SOFT_WHITE)
    spinner(canvas, centre_y=y + 140, radius=80, elapsed_s=elapsed_s)
    if code:
        y = canvas.text(
            f"{texts.ENROLMENT_CODE} {code}", size=TITLE, top=y + 260, colour=YELLOW, bold=True
        )
        canvas.text(texts.ENROLMENT_TELL_CODE, size=BODY, top=y + 30, colour=SOFT_WHITE)


def enrolment_refused(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    """The token or the request was refused: why, and what to do (the card says the same)."""
    warning_sign(canvas, centre_y=190, radius=110)
    y = canvas.text(texts.ENROLMENT_REFUSED, size=HEADLINE, top=350, bold=True)
    lines = [line for line in info.get("reason", "").split("\n") if line.strip()]
    for i, line in enumerate(lines[:3]):
        last = i == len(lines[:3]) - 1 and len(lines) > 1
        y = canvas.text(
            line, size=BODY, top=y + 30, colour=YELLOW if last else SOFT_WHITE, bold=last,
            max_lines=3,
        )  # fmt: skip


def in_call(
    canvas: Canvas,
    video: pygame.Surface | None,
    self_view: pygame.Surface | None,
    document: str | None = None,
    *,
    headset: bool = False,
    caption: list[str] | None = None,
    typing: str | None = None,
    typed: str | None = None,
) -> None:
    """The agent full screen (letterboxed), oneself small bottom right, a discreet hint;
    over the top, what to do with a document while the agent scans or prints; with a
    headset plugged in, that the call is heard there alone; the lines the agent typed,
    large, white on black, across the lower middle; below them, once the citizen typed on
    the USB keyboard, their input line (``typing``, even empty) and the last line sent."""
    surface = canvas.surface
    if video is None:
        canvas.text(texts.CONNECTING, size=EMPHASIS, top=480, bold=True)
    else:
        surface.blit(video, video.get_rect(center=surface.get_rect().center))
    if self_view is not None:
        margin, border = canvas.px(32), canvas.px(4)
        rect = self_view.get_rect(bottomright=(canvas.width - margin, canvas.height - margin))
        pygame.draw.rect(surface, WHITE, rect.inflate(2 * border, 2 * border))
        surface.blit(self_view, rect)
    if document:
        _document_banner(canvas, document)
    bottom, rows = canvas.px(CAPTION_BOTTOM), CAPTION_ROWS
    if typing is not None:
        top = typing_panel(canvas, typing, typed, bottom=bottom)
        bottom, rows = top - canvas.px(PANEL_GAP), CAPTION_ROWS_TYPING
    if caption:
        _caption_panel(canvas, caption, bottom=bottom, max_rows=rows)
    _hang_up_hint(canvas, texts.HEADSET_ON if headset else None)


def _document_banner(canvas: Canvas, text: str) -> None:
    """A band across the top: a sheet on the scanner's glass, and the instruction."""
    surface = canvas.surface
    height = canvas.px(200)
    band = pygame.Surface((canvas.width, height), pygame.SRCALPHA)
    band.fill(HINT_BACKDROP)
    surface.blit(band, (0, 0))
    glass = pygame.Rect(canvas.px(40), canvas.px(40), canvas.px(150), canvas.px(120))
    pygame.draw.rect(surface, WHITE, glass, width=canvas.px(4), border_radius=canvas.px(8))
    sheet = pygame.Rect(glass.x + canvas.px(12), glass.y + canvas.px(12), canvas.px(60), 0)
    sheet.height = canvas.px(84)
    pygame.draw.rect(surface, WHITE, sheet)
    left = glass.right + canvas.px(40)
    px = canvas.px(BODY)
    lines = wrap(canvas.fonts.font(px, bold=True), text, canvas.width - left - canvas.px(40))[:3]
    top = (height - len(lines) * round(px * 1.25)) // 2
    for i, words in enumerate(lines):
        line = canvas.fonts.line(words, px, bold=True, colour=WHITE)
        rect = line.get_rect(topleft=(left, top + i * round(px * 1.25)))
        surface.blit(line, rect)
        canvas.text_rects.append(rect)


def _caption_panel(canvas: Canvas, lines: list[str], *, bottom: int, max_rows: int) -> None:
    """The agent's typed lines (oldest first), wrapped; the last ``max_rows`` rows on an
    opaque black panel ending at ``bottom`` (pixels), its label in yellow above them.
    Records each row it draws."""
    surface = canvas.surface
    px, pad = canvas.px(EMPHASIS), canvas.px(CAPTION_PAD)
    font = canvas.fonts.font(px, bold=True)
    width = canvas.width - 2 * canvas.px(MARGIN)
    rows = [row for line in lines for row in wrap(font, line, width)][-max_rows:]
    label = canvas.fonts.line(texts.CAPTION_LABEL, canvas.px(HINT), bold=True, colour=YELLOW)
    step = round(font.get_linesize() * LINE_SPACING)
    top = bottom - len(rows) * step - label.get_height() - 3 * pad
    panel = pygame.Rect(canvas.px(MARGIN) - pad, top, width + 2 * pad, bottom - top)
    pygame.draw.rect(surface, BLACK, panel, border_radius=canvas.px(12))
    rect = label.get_rect(topleft=(canvas.px(MARGIN), top + pad))
    surface.blit(label, rect)
    canvas.text_rects.append(rect)
    y = rect.bottom + pad
    for words in rows:
        line = canvas.fonts.line(words, px, bold=True, colour=WHITE)
        rect = line.get_rect(topleft=(canvas.px(MARGIN), y))
        surface.blit(line, rect)
        canvas.text_rects.append(rect)
        canvas.caption_rows.append((words, rect))
        y += step


def _hang_up_hint(canvas: Canvas, headset: str | None = None) -> None:
    """The hang-up hint bottom left; above it, in yellow, the headset's line when plugged."""
    px = canvas.px(HINT)
    pad = canvas.px(14)
    bottom = canvas.height - canvas.px(32) - pad
    lines = [(texts.HANG_UP_HINT, HINT_GREY)] + ([(headset, YELLOW)] if headset else [])
    for words, colour in lines:
        line = canvas.fonts.line(words, px, bold=colour == YELLOW, colour=colour)
        rect = line.get_rect(bottomleft=(canvas.px(32) + pad, bottom))
        backdrop = pygame.Surface(rect.inflate(2 * pad, 2 * pad).size, pygame.SRCALPHA)
        backdrop.fill(HINT_BACKDROP)
        canvas.surface.blit(backdrop, rect.inflate(2 * pad, 2 * pad))
        canvas.surface.blit(line, rect)
        canvas.text_rects.append(rect)
        bottom = rect.top - 3 * pad


SceneFn = Callable[[Canvas, ScreenInfo, float], None]

SCENES: dict[ScreenState, SceneFn] = {
    ScreenState.IDLE: idle,
    ScreenState.WAITING: waiting,
    ScreenState.ENDED: ended,
    ScreenState.MISSED: missed,
    ScreenState.OUT_OF_SERVICE: out_of_service,
    ScreenState.APPOINTMENT: choosing.appointment,
    ScreenState.CHOICE: choosing.choice,
    ScreenState.CLOSED: choosing.closed,
    ScreenState.SURVEY: choosing.survey,
    ScreenState.ENROLMENT: enrolment,
    ScreenState.ENROLMENT_REFUSED: enrolment_refused,
}
