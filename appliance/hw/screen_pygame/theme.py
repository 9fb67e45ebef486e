"""Colours and type sizes: high contrast, large type, for an elderly citizen at 1.5 m.

Sizes are pixels on a 1080-line screen and scale with the screen's height. Every text
colour on its background has a WCAG contrast ratio of at least 7:1 (level AAA), which
``tests/appliance/test_screen_states.py`` checks.
"""

from __future__ import annotations

from appliance.hw.ports import ScreenState

Colour = tuple[int, int, int]

REFERENCE_HEIGHT = 1080  # sizes below are for this height
MARGIN = 80  # left/right margin around text

WHITE: Colour = (255, 255, 255)
SOFT_WHITE: Colour = (226, 234, 242)  # secondary lines, still ≥ 7:1 on every background
YELLOW: Colour = (255, 210, 63)  # what to remember: the service, the next opening, what to do
BLACK: Colour = (0, 0, 0)
HINT_GREY: Colour = (200, 200, 200)  # the discreet hang-up hint over the video

# One distinct background per state: the citizen (and a test) tells them apart at a glance.
BACKGROUND: dict[ScreenState, Colour] = {
    ScreenState.IDLE: (11, 37, 69),  # navy
    ScreenState.WAITING: (12, 58, 64),  # dark teal
    ScreenState.IN_CALL: BLACK,  # letterbox bars around the agent's video
    ScreenState.ENDED: (18, 72, 40),  # dark green
    ScreenState.MISSED: (84, 50, 0),  # dark amber
    ScreenState.OUT_OF_SERVICE: (110, 14, 26),  # dark red
    ScreenState.APPOINTMENT: (58, 26, 74),  # plum
    ScreenState.CHOICE: (40, 32, 92),  # indigo
    ScreenState.CLOSED: (36, 44, 52),  # slate
    ScreenState.SURVEY: (20, 50, 100),  # royal blue
    ScreenState.ENROLMENT: (30, 30, 30),  # charcoal: the technician's screens, not a citizen's
    ScreenState.ENROLMENT_REFUSED: (90, 20, 60),  # dark magenta
}
# The five faces of the satisfaction question, worst to best (drawn, not text).
FACE_COLOURS: tuple[Colour, ...] = (
    (214, 69, 65),
    (236, 135, 52),
    (240, 200, 60),
    (150, 200, 70),
    (70, 180, 90),
)

# Text sizes (px at 1080 lines). 56 px is ~16 mm tall on a 24" screen: readable at 1.5 m.
TITLE = 104
HEADLINE = 84
EMPHASIS = 72
BODY = 56
HINT = 36
