"""The closed counter's screen from a real schedule, drawn by the real pygame adapter: the call
machine decides what to show, the screen draws it, the screenshot is read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame

from appliance.call.machine import CallMachine
from appliance.hw.ports import ScreenState
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.draw import Fonts
from appliance.hw.screen_pygame.renderer import Renderer
from appliance.hw.screen_pygame.theme import BACKGROUND, FACE_COLOURS, WHITE, YELLOW
from guichet import signalling as sig
from guichet.questionnaire import default_questionnaire
from tests.appliance.screen_helpers import SIZE, dominant, screen, shot
from tests.appliance.test_call_machine import WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import WallClock, at, schedule

__all__ = ["screen"]  # the fixture


def closed_machine(fx: Effects) -> CallMachine:
    wall = WallClock(at(1, 18, 0))  # Tuesday evening: nothing open until Thursday
    machine = CallMachine(fx, clock=Clock(), wall_clock=wall)
    machine.link_connected(WELCOME)
    machine.configure(schedule(phone="05 55 00 00 00"), None)
    return machine


def test_closed_screen_shows_the_next_openings_and_the_phone(
    screen: PygameScreen, tmp_path: Path
) -> None:
    fx = Effects()
    closed_machine(fx)
    state, info = fx.screens[-1]
    assert state is ScreenState.CLOSED
    assert info == {
        "lines": ["Caf : jeudi 14 h", "Carsat : sur rendez-vous"],
        "phone": "05 55 00 00 00",
    }
    screen.show(state, **info)
    path = tmp_path / "screen-closed.png"
    pixels = shot(screen, path)
    assert path.stat().st_size > 10_000  # a real picture, not a blank one
    assert dominant(pixels) == BACKGROUND[ScreenState.CLOSED]
    yellow_rows = np.flatnonzero(np.all(pixels == YELLOW, axis=-1).any(axis=1))
    bands = 1 + int(np.count_nonzero(np.diff(yellow_rows) > 1))
    assert bands == 2  # one yellow line per next opening
    assert np.all(pixels == WHITE, axis=-1).sum() > 5_000  # "Guichet fermé", the phone


def test_closed_screen_lays_out_one_line_per_opening() -> None:
    pygame.font.init()
    fx = Effects()
    closed_machine(fx)
    state, info = fx.screens[-1]
    renderer = Renderer(pygame.Surface(SIZE), Fonts())
    renderer.show(state, info, at=0.0)
    renderer.draw(now=0.0)
    # title, "Prochaines ouvertures :", two openings, the phone, "Adressez-vous à l'accueil"
    assert len(renderer.text_rects) == 6


def test_survey_faces_are_drawn_with_the_chosen_one_ringed(
    screen: PygameScreen, tmp_path: Path
) -> None:
    fx = Effects()
    machine = closed_machine(fx)
    machine.configure(machine.schedule, default_questionnaire())
    machine.wall_clock = WallClock(at(3, 15, 0))  # Thursday afternoon: Caf open
    machine.pressed()
    call_id = machine.call_id
    assert call_id is not None
    machine.answered(sig.CallAnswered(call_id=call_id, agent_label="A"))
    machine.ended_by_server(sig.CallEnded(call_id=call_id, reason="hangup_agent"))
    machine.released(3.0)  # first question answered: the faces
    state, info = fx.screens[-1]
    assert (state, info["faces"], info["selected"]) == (ScreenState.SURVEY, True, 0)
    screen.show(state, **info)
    pixels = shot(screen, tmp_path / "survey.png")
    for colour in FACE_COLOURS:
        assert np.all(pixels == colour, axis=-1).sum() > 1_000, colour
    assert info["choices"][0] == "Très mécontent"
