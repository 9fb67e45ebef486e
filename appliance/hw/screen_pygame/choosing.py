"""The screens that follow the schedule and the questionnaire: an appointment due now, a
choice between open services, a closed counter's next openings, one question after a call.

Same conventions as ``scenes.py``: one function per state, 1080-line units, centred text.
Lists (services, answers) show every entry; the highlighted one is framed and yellow, so it
does not depend on colour alone. With extra choice buttons wired (``numbered``), the options
they choose carry their number in a white disc, like the label on the button.
"""

from __future__ import annotations

import math

import pygame

from appliance.hw.ports import ScreenInfo
from appliance.hw.screen_pygame import texts
from appliance.hw.screen_pygame.draw import Canvas, call_button
from appliance.hw.screen_pygame.theme import (
    BLACK,
    BODY,
    EMPHASIS,
    FACE_COLOURS,
    HEADLINE,
    HINT,
    MARGIN,
    SOFT_WHITE,
    TITLE,
    WHITE,
    YELLOW,
)

ROW_MAX = 110  # one list entry's height at most (1080 units)
LIST_BOTTOM = 850  # lists end here; the press hints sit below
HINTS_TOP = 875
FACE_RADIUS = 80
FACES_CENTRE_Y = 540
BADGE_RADIUS = 30  # the number of an extra button next to its option (1080 units)


def appointment(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    y = canvas.text(texts.WELCOME, size=TITLE, top=70, bold=True)
    y = canvas.text(texts.YOUR_APPOINTMENT, size=BODY, top=y + 30, colour=SOFT_WHITE)
    if service := info.get("service"):
        canvas.text(service, size=EMPHASIS, top=y + 10, colour=YELLOW, bold=True)
    call_button(canvas, centre_y=690, radius=130)
    canvas.text(texts.PRESS_FOR_APPOINTMENT, size=EMPHASIS, top=880, bold=True)


def choice(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    y = canvas.text(texts.CHOOSE_SERVICE, size=TITLE, top=50, bold=True)
    numbered = info.get("numbered", 0)
    choices, selected = info.get("choices", []), info.get("selected", 0)
    option_list(canvas, choices, selected, y + 30, LIST_BOTTOM, numbered=numbered)
    _hints(canvas, texts.SHORT_PRESS_NEXT, texts.LONG_PRESS_CALL, numbered, info.get("more_time"))


def closed(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    y = canvas.text(texts.CLOSED, size=TITLE, top=50, bold=True)
    lines = info.get("lines", [])
    if lines:
        y = canvas.text(texts.NEXT_OPENINGS, size=BODY, top=y + 20, colour=SOFT_WHITE)
        bottom = 760 if info.get("phone") else 850
        y = text_rows(canvas, lines, top=y + 10, bottom=bottom)
    else:
        y = canvas.text(texts.NO_OPENING_KNOWN, size=BODY, top=y + 40, colour=SOFT_WHITE)
    if phone := info.get("phone"):
        y = canvas.text(f"{texts.CALL_INSTEAD} {phone}", size=BODY, top=max(y + 10, 780))
    canvas.text(texts.ASK_RECEPTION, size=BODY, top=max(y + 20, 880), colour=SOFT_WHITE)


def survey(canvas: Canvas, info: ScreenInfo, elapsed_s: float) -> None:
    step = texts.QUESTION_OF.format(step=info.get("step", 1), steps=info.get("steps", 1))
    y = canvas.text(step, size=HINT, top=30, colour=SOFT_WHITE)
    y = canvas.text(info.get("question", ""), size=HEADLINE, top=y + 10, bold=True)
    choices, selected = info.get("choices", []), info.get("selected", 0)
    numbered = info.get("numbered", 0)
    if info.get("faces"):
        above = 2 * BADGE_RADIUS + 20 if numbered else 0  # room for the numbers over the faces
        centre_y = max(FACES_CENTRE_Y, y + 40 + above + FACE_RADIUS)
        faces(canvas, selected, centre_y=centre_y, numbered=numbered)
        if 0 <= selected < len(choices):
            label_top = centre_y + FACE_RADIUS + 50
            canvas.text(choices[selected], size=EMPHASIS, top=label_top, colour=YELLOW, bold=True)
    else:
        option_list(canvas, choices, selected, y + 30, LIST_BOTTOM, numbered=numbered)
    _hints(canvas, texts.SHORT_PRESS_MOVE, texts.LONG_PRESS_CHOOSE, numbered, info.get("more_time"))


# --- pieces ------------------------------------------------------------------------------------


def option_list(
    canvas: Canvas,
    labels: list[str],
    selected: int,
    top: float,
    bottom: float,
    *,
    numbered: int = 0,
) -> None:
    """Entries one under the other between ``top`` and ``bottom``; ``selected`` framed; the
    first ``numbered`` ones with their button's number on the left."""
    if not labels:
        return
    row = min(ROW_MAX, (bottom - top) / len(labels))
    size = max(HINT, min(BODY, round(row * 0.5)))
    width = canvas.width - 2 * canvas.px(MARGIN)
    for i, label in enumerate(labels):
        row_top = top + i * row
        chosen = i == selected
        if chosen:
            frame = pygame.Rect(0, 0, width, canvas.px(row * 0.9))
            frame.midtop = (canvas.centre_x, canvas.px(row_top + row * 0.05))
            thick = max(3, canvas.px(6))
            pygame.draw.rect(canvas.surface, YELLOW, frame, width=thick, border_radius=thick * 3)
        colour = YELLOW if chosen else WHITE
        text_top = row_top + (row - size * 1.2) / 2
        canvas.text(label, size=size, top=text_top, colour=colour, bold=chosen, max_lines=1)
        if i < numbered:
            x = canvas.px(MARGIN + 20 + BADGE_RADIUS)
            badge(canvas, i + 1, (x, canvas.px(row_top + row / 2)))


def text_rows(canvas: Canvas, lines: list[str], *, top: float, bottom: float) -> int:
    """Yellow lines, evenly spaced within ``top``–``bottom``; returns the last one's bottom."""
    row = min(ROW_MAX * 0.8, (bottom - top) / max(1, len(lines)))
    size = max(HINT, min(BODY, round(row * 0.65)))
    y = round(top)
    for i, line in enumerate(lines):
        y = canvas.text(line, size=size, top=top + i * row, colour=YELLOW, bold=True, max_lines=1)
    return y


def faces(canvas: Canvas, selected: int, centre_y: float, *, numbered: int = 0) -> None:
    """Five faces from very unhappy to very happy; the ``selected`` one ringed in yellow; the
    first ``numbered`` ones with their button's number above."""
    r = canvas.px(FACE_RADIUS)
    spacing = min(canvas.width // 5, canvas.px(FACE_RADIUS * 3))
    cy = canvas.px(centre_y)
    for i, colour in enumerate(FACE_COLOURS):
        cx = canvas.centre_x + (i - 2) * spacing
        if i == selected:
            pygame.draw.circle(canvas.surface, YELLOW, (cx, cy), round(r * 1.3), width=r // 6)
        _face(canvas.surface, (cx, cy), r, colour, mood=i - 2)
        if i < numbered:
            badge(canvas, i + 1, (cx, cy - round(r * 1.3) - canvas.px(BADGE_RADIUS + 10)))


def badge(canvas: Canvas, number: int, centre: tuple[int, int]) -> None:
    """An extra button's number: black on a white disc."""
    r = canvas.px(BADGE_RADIUS)
    pygame.draw.circle(canvas.surface, WHITE, centre, r)
    rendered = canvas.fonts.line(str(number), round(r * 1.4), bold=True, colour=BLACK)
    rect = rendered.get_rect(center=centre)
    canvas.surface.blit(rendered, rect)
    canvas.text_rects.append(rect)


def _face(
    surface: pygame.Surface,
    centre: tuple[int, int],
    r: int,
    colour: tuple[int, int, int],
    mood: int,
) -> None:
    """One face; ``mood`` from -2 (deep frown) to 2 (broad smile)."""
    cx, cy = centre
    pygame.draw.circle(surface, colour, centre, r)
    eye = max(2, r // 9)
    for side in (-1, 1):
        pygame.draw.circle(surface, BLACK, (cx + side * round(r * 0.35), cy - round(r * 0.3)), eye)
    line = max(2, r // 10)
    if mood == 0:
        pygame.draw.line(
            surface, BLACK, (cx - r // 2, cy + r // 3), (cx + r // 2, cy + r // 3), line
        )
        return
    depth = round(r * (0.2 if abs(mood) == 1 else 0.4))
    mouth = pygame.Rect(0, 0, r, 2 * depth)
    if mood > 0:  # the lower half of an ellipse: a smile
        mouth.midbottom = (cx, cy + round(r * 0.6))
        pygame.draw.arc(surface, BLACK, mouth, math.pi, 2 * math.pi, line)
    else:  # the upper half, lower down: a frown
        mouth.midtop = (cx, cy + round(r * 0.25))
        pygame.draw.arc(surface, BLACK, mouth, 0.0, math.pi, line)


def _hints(
    canvas: Canvas, short: str, long: str, numbered: int = 0, more_time: int | None = None
) -> None:
    """The press hints; while a timeout's warning runs (``more_time``: seconds left), the
    short press's line says it gives more time, in yellow."""
    if more_time is not None:
        line = texts.MORE_TIME.format(seconds=more_time)
        y = canvas.text(line, size=BODY, top=HINTS_TOP, colour=YELLOW, bold=True, max_lines=1)
    else:
        y = canvas.text(short, size=BODY, top=HINTS_TOP, colour=SOFT_WHITE, max_lines=1)
    y = canvas.text(long, size=BODY, top=y, colour=SOFT_WHITE, bold=True, max_lines=1)
    if numbered:
        canvas.text(texts.NUMBERED_BUTTONS, size=HINT, top=y, colour=SOFT_WHITE, max_lines=1)
