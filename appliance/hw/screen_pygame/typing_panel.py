"""The citizen's input line in a call, when they type on the counter's USB keyboard.

An opaque black panel above the self-view: the label in yellow (what to do), the line being
typed in large white type with a block cursor (its end, when longer than the screen: an
input field that scrolls), and, smaller, the last line sent to the agent. The typed text is
rendered uncached: nothing of it stays in the fonts' cache once the call is over.
"""

from __future__ import annotations

import pygame

from appliance.hw.screen_pygame import texts
from appliance.hw.screen_pygame.draw import Canvas
from appliance.hw.screen_pygame.theme import (
    BLACK,
    EMPHASIS,
    HINT,
    MARGIN,
    SOFT_WHITE,
    WHITE,
    YELLOW,
)

PAD = 24  # 1080 units, around the rows on the panel (white on black: 21:1)
ELLIPSIS = "…"


def typing_panel(canvas: Canvas, draft: str, sent: str | None, *, bottom: int) -> int:
    """Draw the panel with its bottom at ``bottom`` (pixels); returns its top (pixels)."""
    surface = canvas.surface
    pad, left = canvas.px(PAD), canvas.px(MARGIN)
    width = canvas.width - 2 * left
    font = canvas.fonts.font(canvas.px(EMPHASIS), bold=True)
    small = canvas.fonts.font(canvas.px(HINT), bold=False)
    label = canvas.fonts.line(texts.TYPING_LABEL, canvas.px(HINT), bold=True, colour=YELLOW)
    cursor_w = max(2, canvas.px(EMPHASIS) // 2)
    shown = _tail(font, draft, width - cursor_w - pad)
    row_h = font.get_linesize()
    sent_row = _sent_row(small, sent, width) if sent else None
    height = label.get_height() + row_h + 3 * pad
    if sent_row is not None:
        height += sent_row.get_height() + pad
    top = bottom - height
    panel = pygame.Rect(left - pad, top, width + 2 * pad, height)
    pygame.draw.rect(surface, BLACK, panel, border_radius=pad // 2)
    rect = label.get_rect(topleft=(left, top + pad))
    surface.blit(label, rect)
    canvas.text_rects.append(rect)
    y = rect.bottom + pad
    x = left
    if shown:
        line = font.render(shown, True, WHITE)
        rect = line.get_rect(topleft=(left, y))
        surface.blit(line, rect)
        canvas.text_rects.append(rect)
        canvas.typing_rows.append((shown, rect))
        x = rect.right + canvas.px(6)
    pygame.draw.rect(surface, WHITE, (x, y + row_h // 8, cursor_w, row_h * 3 // 4))
    if sent_row is not None:
        rect = sent_row.get_rect(topleft=(left, y + row_h + pad))
        surface.blit(sent_row, rect)
        canvas.text_rects.append(rect)
    return top


def _tail(font: pygame.font.Font, text: str, width: int) -> str:
    """``text``'s end that fits in ``width``, after an ellipsis when its start is cut."""
    if font.size(text)[0] <= width:
        return text
    low, high = 1, len(text)  # the fewest leading characters to drop so the rest fits
    while low < high:
        mid = (low + high) // 2
        if font.size(ELLIPSIS + text[mid:])[0] <= width:
            high = mid
        else:
            low = mid + 1
    return ELLIPSIS + text[low:]


def _sent_row(font: pygame.font.Font, sent: str, width: int) -> pygame.Surface:
    """« Envoyé au conseiller : … », the line's start when it is too long for one row."""
    words = texts.TYPED_SENT.format(line=sent)
    if font.size(words)[0] > width:
        low, high = 0, len(sent)  # the most characters of the line that fit
        while low < high:
            mid = (low + high + 1) // 2
            if font.size(texts.TYPED_SENT.format(line=sent[:mid] + ELLIPSIS))[0] <= width:
                low = mid
            else:
                high = mid - 1
        words = texts.TYPED_SENT.format(line=sent[:low] + ELLIPSIS)
    return font.render(words, True, SOFT_WHITE)
