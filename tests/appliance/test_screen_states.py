"""Each screen state, drawn by the real pygame adapter on SDL's dummy driver, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame
import pytest

from appliance.hw.ports import OutOfServiceReason, ScreenInfo, ScreenState
from appliance.hw.screen_pygame import texts
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.draw import Fonts
from appliance.hw.screen_pygame.renderer import Renderer
from appliance.hw.screen_pygame.theme import (
    BACKGROUND,
    HINT_GREY,
    SOFT_WHITE,
    WHITE,
    YELLOW,
    Colour,
)
from tests.appliance.screen_helpers import SIZE, close_to, dominant, screen, shot, solid_frame

__all__ = ["screen"]  # the fixture

LONG_SERVICE = "Mutualité sociale agricole — Retraite, santé et prestations familiales"
EXAMPLES: dict[ScreenState, ScreenInfo] = {
    ScreenState.IDLE: {"service": LONG_SERVICE},
    ScreenState.WAITING: {"service": LONG_SERVICE, "waited_s": 3599},
    ScreenState.IN_CALL: {},
    ScreenState.ENDED: {"reason": "La communication a été coupée."},
    ScreenState.MISSED: {
        "reason": "Tous les conseillers sont occupés.",
        "next_opening": "mardi 2 décembre à 9 h",
        "phone": "32 30",
    },
    ScreenState.OUT_OF_SERVICE: {"reason": OutOfServiceReason.FLEET_UNREACHABLE},
    ScreenState.APPOINTMENT: {"service": LONG_SERVICE},
    ScreenState.CHOICE: {
        "choices": ["Caf — Allocations familiales", LONG_SERVICE, "France Travail", "Carsat"],
        "selected": 1,
    },
    ScreenState.CLOSED: {
        "lines": [
            "Caf : mardi 14 h",
            "MSA : demain 9 h 30",
            "France Travail : lundi 12 janvier 14 h",
            "Carsat : sur rendez-vous",
        ],
        "phone": "05 55 00 00 00",
    },
    ScreenState.SURVEY: {
        "question": "Sans ce guichet, vous seriez-vous déplacé ?",
        "choices": ["Non", "Oui, moins de 10 km", "Oui, de 10 à 30 km", "Oui, plus de 30 km"],
        "selected": 2,
        "step": 3,
        "steps": 3,
    },
    ScreenState.ENROLMENT: {"counter": "Guichet 1 — Mairie de Saint-Exemple", "code": "K7MP4X"},
    ScreenState.ENROLMENT_REFUSED: {
        "reason": "Le serveur de flotte a refusé l'enrôlement : jeton épuisé.\n"
        "Demandez un nouveau jeton au Pays, écrivez-le dans guichet.toml, redémarrez."
    },
}
# Where each state must show yellow (what to remember) in its screenshot.
YELLOW_EXPECTED = {
    ScreenState.IDLE,
    ScreenState.WAITING,
    ScreenState.MISSED,
    ScreenState.OUT_OF_SERVICE,
    ScreenState.APPOINTMENT,
    ScreenState.CHOICE,
    ScreenState.CLOSED,
    ScreenState.SURVEY,
    ScreenState.ENROLMENT,  # the code
    ScreenState.ENROLMENT_REFUSED,  # what to do
}


def luminance(colour: Colour) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Colour, b: Colour) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("state", list(ScreenState))
@pytest.mark.parametrize("text", [WHITE, SOFT_WHITE, YELLOW])
def test_every_text_colour_has_aaa_contrast_on_every_background(
    state: ScreenState, text: Colour
) -> None:
    assert contrast(text, BACKGROUND[state]) >= 7.0


@pytest.mark.parametrize("state", [s for s in ScreenState if s != ScreenState.IN_CALL])
def test_each_state_has_its_background_and_large_high_contrast_text(
    screen: PygameScreen, tmp_path: Path, state: ScreenState
) -> None:
    screen.show(state, **EXAMPLES[state])
    pixels = shot(screen, tmp_path / f"{state}.png")
    assert pixels.shape == (SIZE[1], SIZE[0], 3)
    assert dominant(pixels) == BACKGROUND[state]
    # The headline: pure white glyphs in the upper part of the screen, many of them.
    top = pixels[: SIZE[1] * 6 // 10]
    white = np.all(top == WHITE, axis=-1)
    assert white.sum() > 5_000
    rows = np.flatnonzero(white.any(axis=1))
    assert rows.max() - rows.min() > 40  # a real line of large type, not a speck
    has_yellow = bool(np.all(pixels == YELLOW, axis=-1).any())
    assert has_yellow == (state in YELLOW_EXPECTED)


@pytest.mark.parametrize(
    ("state", "extra"),
    [
        (ScreenState.WAITING, {"position": 2, "estimated_wait_s": 480}),
        (ScreenState.CHOICE, {"more_time": 10}),
        (ScreenState.SURVEY, {"more_time": 10}),
        (ScreenState.IN_CALL, {"headset": True}),
    ],
)
def test_the_queue_and_more_time_show_in_yellow_in_the_lower_part(
    screen: PygameScreen, tmp_path: Path, state: ScreenState, extra: ScreenInfo
) -> None:
    """Issue 15: the place in the queue under the waiting clock; "Appui court : plus de
    temps" in place of the short press's hint; the headset's line over the hang-up hint."""
    lower = slice(SIZE[1] * 6 // 10, SIZE[1])
    screen.show(state, **EXAMPLES[state])
    before = np.all(shot(screen, tmp_path / "before.png")[lower] == YELLOW, axis=-1).sum()
    screen.show(state, **(EXAMPLES[state] | extra))
    after = np.all(shot(screen, tmp_path / "after.png")[lower] == YELLOW, axis=-1).sum()
    assert after > before + 1_000


def test_states_differ_from_each_other(screen: PygameScreen, tmp_path: Path) -> None:
    seen = set()
    for state in ScreenState:
        screen.show(state, **EXAMPLES[state])
        seen.add(dominant(shot(screen, tmp_path / f"{state}.png")))
    assert len(seen) == len(ScreenState)


def test_in_call_shows_the_agent_letterboxed_in_the_centre(
    screen: PygameScreen, tmp_path: Path
) -> None:
    red, blue = (200, 30, 40), (20, 60, 220)
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(640, 480, red, blue))  # 4:3 in 16:9: bars left and right
    pixels = shot(screen, tmp_path / "in_call.png")
    middle = SIZE[1] // 2
    assert close_to(pixels[middle, 400], red)  # left half of the picture: not mirrored
    assert close_to(pixels[middle, 880], blue)
    # 640×480 scaled to 960×720, centred: bars are x < 160 and x ≥ 1120.
    assert close_to(pixels[middle, 150], (0, 0, 0), 0)
    assert close_to(pixels[middle, 1130], (0, 0, 0), 0)
    assert close_to(pixels[middle, 165], red)
    assert close_to(pixels[middle, 1114], blue)
    assert close_to(pixels[3, 700], blue)
    assert close_to(pixels[716, 580], red)


def test_in_call_converts_camera_formats_in_c(screen: PygameScreen, tmp_path: Path) -> None:
    """A YUV 4:2:0 frame (what decoders give) comes out in the right colours."""
    frame = solid_frame(1280, 720, (30, 160, 90)).reformat(format="yuv420p")
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(frame)
    pixels = shot(screen, tmp_path / "yuv.png")
    assert close_to(pixels[360, 640], (30, 160, 90), tolerance=8)
    assert close_to(pixels[10, 10], (30, 160, 90), tolerance=8)  # 16:9 fills: no bars


def test_self_view_sits_small_in_the_bottom_right_corner(
    screen: PygameScreen, tmp_path: Path
) -> None:
    agent, me = (200, 30, 40), (40, 200, 60)
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(1280, 720, agent))
    screen.show_frame(solid_frame(640, 360, me), self_view=True)
    pixels = shot(screen, tmp_path / "self.png")
    assert close_to(pixels[620, 1150], me)  # bottom right
    assert close_to(pixels[360, 640], agent)  # the agent keeps the centre
    assert close_to(pixels[100, 1150], agent)
    mine = np.all(np.abs(pixels.astype(int) - me) <= 6, axis=-1).sum()
    assert 0.03 < mine / (SIZE[0] * SIZE[1]) < 0.08  # ~22 % × 22 % of the screen


def test_in_call_without_video_yet_says_so_and_shows_the_hang_up_hint(
    screen: PygameScreen, tmp_path: Path
) -> None:
    screen.show(ScreenState.IN_CALL)
    pixels = shot(screen, tmp_path / "connecting.png")
    assert dominant(pixels) == (0, 0, 0)
    assert np.all(pixels[300:420] == WHITE, axis=-1).sum() > 2_000  # "Connexion en cours…"
    hint = pixels[SIZE[1] - 80 :, : SIZE[0] // 2]
    assert np.all(np.abs(hint.astype(int) - HINT_GREY) <= 2, axis=-1).sum() > 300


def test_frames_outside_a_call_are_not_shown(screen: PygameScreen, tmp_path: Path) -> None:
    screen.show(ScreenState.IDLE)
    screen.show_frame(solid_frame(1280, 720, (200, 30, 40)))
    assert dominant(shot(screen, tmp_path / "idle.png")) == BACKGROUND[ScreenState.IDLE]
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(1280, 720, (200, 30, 40)))
    screen.show(ScreenState.ENDED)  # the call's last picture goes with it
    screen.show(ScreenState.IN_CALL)
    assert dominant(shot(screen, tmp_path / "next_call.png")) == (0, 0, 0)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
@pytest.mark.parametrize("state", list(ScreenState))
def test_layouts_fit_both_screen_sizes_without_overlap(
    size: tuple[int, int], state: ScreenState
) -> None:
    pygame.font.init()
    surface = pygame.Surface(size)
    renderer = Renderer(surface, Fonts())
    renderer.show(state, EXAMPLES[state], at=0.0)
    renderer.draw(now=1.0)
    rects = renderer.text_rects
    assert rects
    bounds = surface.get_rect()
    for i, rect in enumerate(rects):
        assert bounds.contains(rect), f"{rect} leaves the screen"
        assert rect.collidelist(rects[i + 1 :]) == -1, f"{rect} overlaps another line"
    smallest = min(r.height for r in rects)
    assert smallest >= 36 * size[1] / 1080  # the discreet hint is the smallest text


def test_waiting_time_counts_on_from_what_the_caller_knew() -> None:
    pygame.font.init()
    renderer = Renderer(pygame.Surface(SIZE), Fonts())
    renderer.show(ScreenState.WAITING, {"waited_s": 58}, at=100.0)
    renderer.draw(now=100.0)
    assert renderer.due_in(100.0) == pytest.approx(0.25)  # the timer and spinner move
    assert renderer.due_in(101.0) == 0.0
    assert texts.mm_ss(58 + 3.2) == "01:01"
    renderer.show(ScreenState.IDLE, {}, at=102.0)
    renderer.draw(now=102.0)
    assert renderer.due_in(200.0) is None  # nothing moves: nothing redrawn


def test_texts() -> None:
    assert texts.mm_ss(0) == "00:00"
    assert texts.mm_ss(75.9) == "01:15"
    assert texts.mm_ss(3665) == "61:05"
    assert texts.mm_ss(-3) == "00:00"
    assert texts.reason_text(OutOfServiceReason.CAMERA_MISSING) == texts.REASONS["camera_missing"]
    assert texts.reason_text("Travaux dans la salle.") == "Travaux dans la salle."


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_a_document_instruction_sits_over_the_call_without_overlap(size: tuple[int, int]) -> None:
    pygame.font.init()
    surface = pygame.Surface(size)
    renderer = Renderer(surface, Fonts())
    text = "Posez votre document face vers la vitre du scanner, en haut à gauche."
    renderer.show(ScreenState.IN_CALL, {"document": text}, at=0.0)
    renderer.draw(now=1.0)
    rects = renderer.text_rects
    assert len(rects) >= 3  # the instruction (wrapped) and the hang-up hint
    bounds = surface.get_rect()
    for i, rect in enumerate(rects):
        assert bounds.contains(rect), f"{rect} leaves the screen"
        assert rect.collidelist(rects[i + 1 :]) == -1, f"{rect} overlaps another line"


def test_the_agent_stays_on_screen_when_an_instruction_comes(
    screen: PygameScreen, tmp_path: Path
) -> None:
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(1280, 720, (200, 30, 40)))
    screen.show(ScreenState.IN_CALL, document="Numérisation en cours : ne bougez pas le document.")
    pixels = shot(screen, tmp_path / "instruction.png")
    assert dominant(pixels) == (200, 30, 40)  # the agent's video, still there
    assert np.all(pixels[40:160] == WHITE, axis=-1).sum() > 2_000  # the banner's text
