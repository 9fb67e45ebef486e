"""Text in the call, on the counter: the session (lines in, acknowledgements out) and the
screen's caption panel drawn by the real pygame renderer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pygame
import pytest

from appliance.call.caption import CaptionSession
from appliance.hw.ports import ScreenState
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.draw import Fonts
from appliance.hw.screen_pygame.renderer import Renderer
from appliance.hw.screen_pygame.theme import WHITE
from guichet import caption as cap
from tests.appliance.screen_helpers import screen, shot, solid_frame

__all__ = ["screen"]  # the fixture

SECRET = "Votre numéro d'allocataire est le 4417 992"


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def send(self, data: str) -> None:
        self.messages.append(json.loads(data))


def test_lines_go_to_the_screen_and_the_agent_sees_what_it_shows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    channel, shown = Sent(), []
    session = CaptionSession(channel, shown.append)
    session.opened()
    for i, text in enumerate(["Bonjour", "Je regarde votre dossier.", SECRET, "Un instant."]):
        session.received(cap.dump(cap.Line(id=i, text=text)))
    assert shown[-1] == ["Je regarde votre dossier.", SECRET, "Un instant."]  # the last 3
    assert channel.messages[0] == {"type": "shown", "id": None, "lines": []}
    assert channel.messages[-1] == {"type": "shown", "id": 3, "lines": shown[-1]}
    session.received('{"type": "line", "id": 9, "text": "' + "x" * 300 + '"}')  # refused
    session.received(b"\x00binary")
    assert len(channel.messages) == 5
    session.received(cap.dump(cap.Clear()))
    assert shown[-1] == []
    assert channel.messages[-1] == {"type": "shown", "id": None, "lines": []}
    session.received(cap.dump(cap.Line(id=10, text=SECRET)))
    session.close()  # the call ends: the screen forgets
    assert shown[-1] == []
    assert session.lines == []
    session.received(cap.dump(cap.Line(id=11, text="trop tard")))
    assert shown[-1] == []
    assert not any(SECRET in r.getMessage() or "x" * 20 in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_caption_sits_over_the_call_large_and_without_overlap(size: tuple[int, int]) -> None:
    pygame.font.init()
    surface = pygame.Surface(size)
    renderer = Renderer(surface, Fonts())
    long_line = "Je vous envoie maintenant le formulaire de demande d'aide au logement à imprimer."
    info = {
        "document": "Posez votre document face vers la vitre du scanner, en haut à gauche.",
        "caption": ["Bonjour", SECRET, long_line],
        "headset": True,
    }
    renderer.show(ScreenState.IN_CALL, info, at=0.0)  # type: ignore[arg-type]
    renderer.frame(solid_frame(1280, 720, (200, 30, 40)), self_view=False)
    renderer.frame(solid_frame(640, 360, (30, 30, 200)), self_view=True)
    renderer.draw(now=1.0)
    rows = renderer.caption_rows
    assert 3 <= len(rows) <= 4  # the newest rows; the oldest scroll away
    assert " ".join(words for words, _ in rows).endswith("à imprimer.")
    assert all(rect.height >= 64 * size[1] / 1080 for _, rect in rows)  # large: ≥ 72 px type
    rects = renderer.text_rects
    bounds = surface.get_rect()
    for i, rect in enumerate(rects):
        assert bounds.contains(rect), f"{rect} leaves the screen"
        assert rect.collidelist(rects[i + 1 :]) == -1, f"{rect} overlaps another line"


def test_the_caption_is_white_on_black_over_the_agent(screen: PygameScreen, tmp_path: Path) -> None:
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(1280, 720, (200, 30, 40)))
    before = shot(screen, tmp_path / "before.png")
    screen.show(ScreenState.IN_CALL, caption=[SECRET])
    pixels = shot(screen, tmp_path / "caption.png")
    ((words, (x, y, w, h)),) = screen.caption_drawn
    assert words == SECRET
    region, earlier = pixels[y : y + h, x : x + w], before[y : y + h, x : x + w]
    white = np.all(region == WHITE, axis=-1).sum()
    black = np.all(region == (0, 0, 0), axis=-1).sum()
    assert white > 0.05 * w * h  # the letters
    assert black > 0.4 * w * h  # on the opaque panel: the agent's red is gone behind them
    assert not np.all(earlier == WHITE, axis=-1).any()
    screen.show(ScreenState.IN_CALL)  # the lines cleared
    shot(screen, tmp_path / "cleared.png")
    assert screen.caption_drawn == []
