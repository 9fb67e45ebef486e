"""The citizen types back on the counter's USB keyboard (issue 15, item 3): the draft, the
text session sending the line, the real pygame adapter reading SDL's keys, and the input
line drawn by the real renderer."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
import pygame
import pytest

from appliance.call.caption import CaptionSession
from appliance.call.citizen_text import CitizenDraft, Typing
from appliance.hw.ports import EditKey, Keyboard, KeyEvent, KeyPressed, ScreenState, TextTyped
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.draw import Fonts
from appliance.hw.screen_pygame.keyboard import PygameKeyboard
from appliance.hw.screen_pygame.renderer import Renderer
from appliance.hw.screen_pygame.theme import WHITE
from guichet import caption as cap
from tests.appliance.screen_helpers import screen, shot, solid_frame
from tests.support.sdl_keys import press_arrow, type_keys

__all__ = ["screen"]  # the fixture

SECRET = "Mon numéro fiscal est 3021 447"
ENTER, BACKSPACE, ESCAPE = (KeyPressed(k) for k in EditKey)


def keys(text: str) -> list[KeyEvent]:
    special = {"\n": ENTER, "\b": BACKSPACE, "\x1b": ESCAPE}
    return [special.get(c) or TextTyped(c) for c in text]


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def send(self, data: str) -> None:
        self.messages.append(json.loads(data))


def test_the_draft_is_edited_by_the_keys_and_enter_hands_the_line_over() -> None:
    draft = CitizenDraft(max_chars=10)
    assert [draft.key(k) for k in keys("Bonjoue\br")] == [None] * 9
    assert draft.typing == Typing("Bonjour")
    assert draft.key(ENTER) == "Bonjour"
    assert draft.typing == Typing("", sent="Bonjour")
    for k in keys("  \n"):  # a blank line is not sent
        assert draft.key(k) is None
    for k in keys("abcdefghijklmn"):  # the limit: typing past it does nothing
        draft.key(k)
    assert draft.typing.draft == "abcdefghij"
    draft.key(ESCAPE)  # wipes the line being typed
    assert draft.typing == Typing("", sent="Bonjour")
    draft.key(BACKSPACE)  # on an empty line: nothing
    assert draft.typing.draft == ""
    draft.forget()
    assert draft.typing == Typing("")
    assert SECRET not in repr(Typing(SECRET, SECRET))
    assert SECRET not in repr(TextTyped(SECRET))


def test_enter_sends_the_citizens_line_to_the_console_and_the_end_forgets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    channel, typing = Sent(), []
    session = CaptionSession(channel, lambda _lines: None, typing.append)
    for k in keys("trop tôt\n"):  # the console's channel is not open yet: nowhere to send
        session.key(k)
    assert typing == []
    session.opened()
    for k in keys(SECRET + "\n" + "Merci\bi"):
        session.key(k)
    typed = [m for m in channel.messages if m["type"] == "typed"]
    assert typed == [{"type": "typed", "id": 0, "text": SECRET}]
    assert cap.parse_to_browser(json.dumps(typed[0])) == cap.Typed(id=0, text=SECRET)
    assert typing[-1] == Typing("Merci", sent=SECRET)
    assert len(typing) == len(SECRET) + 1 + 7  # the screen follows every key
    for k in keys("\nEncore\n"):
        session.key(k)
    assert [m["id"] for m in channel.messages if m["type"] == "typed"] == [0, 1, 2]
    session.key(TextTyped("x" * (cap.MAX_LINE_CHARS + 50)))
    session.key(ENTER)
    longest = channel.messages[-1]
    assert isinstance(longest["text"], str)
    assert len(longest["text"]) == cap.MAX_LINE_CHARS
    session.key(TextTyped("brouillon"))
    session.close()  # the call ends: the draft and the sent lines are forgotten
    assert typing[-1] is None
    assert session.typing == Typing("")
    sent_before = len(channel.messages)
    session.key(TextTyped("après"))
    session.key(ENTER)
    assert len(channel.messages) == sent_before
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged
    assert "brouillon" not in logged


async def test_the_adapter_hands_sdls_keys_to_the_loop_in_order(screen: PygameScreen) -> None:
    loop = asyncio.get_running_loop()
    keyboard = PygameKeyboard(screen, loop=loop)
    assert isinstance(keyboard, Keyboard)
    got: list[KeyEvent] = []
    done = asyncio.Event()

    def key(event: KeyEvent) -> None:
        assert asyncio.get_running_loop() is loop  # on the loop, not the render thread
        got.append(event)
        if event == ENTER:
            done.set()

    keyboard.when_key(key)
    screen.show(ScreenState.IN_CALL)
    type_keys("Là\b")
    press_arrow()  # neither types nor edits: nothing
    type_keys("a ç\x1bÉ\n")
    await asyncio.wait_for(done.wait(), 10)
    assert got == keys("Là\ba ç\x1bÉ\n")
    keyboard.close()  # no listener: the keys are read off SDL's queue and dropped
    type_keys("perdu\n")
    screen.show(ScreenState.IDLE)
    screen.screenshot(Path("/dev/null"))  # one more turn of the render thread
    await asyncio.sleep(0)
    assert got == keys("Là\ba ç\x1bÉ\n")


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_input_line_sits_under_the_agents_lines_large_and_without_overlap(
    size: tuple[int, int],
) -> None:
    pygame.font.init()
    surface = pygame.Surface(size)
    renderer = Renderer(surface, Fonts())
    long_draft = "Je voudrais savoir si mon dossier de demande d'aide au logement est complet " * 2
    info = {
        "document": "Posez votre document face vers la vitre du scanner, en haut à gauche.",
        "caption": ["Bonjour", "Pouvez-vous me donner votre numéro ?", "Je regarde."],
        "headset": True,
        "typing": long_draft,
        "typed": SECRET * 5,
    }
    renderer.show(ScreenState.IN_CALL, info, at=0.0)  # type: ignore[arg-type]
    renderer.frame(solid_frame(1280, 720, (200, 30, 40)), self_view=False)
    renderer.frame(solid_frame(640, 360, (30, 30, 200)), self_view=True)
    renderer.draw(now=1.0)
    ((shown, row),) = renderer.typing_rows
    assert shown.startswith("…")
    assert long_draft.rstrip().endswith(shown[1:].rstrip())
    assert row.height >= 64 * size[1] / 1080  # large: 72-px type
    assert renderer.caption_rows, "the agent's lines stay above the citizen's"
    assert all(rect.bottom < row.top for _, rect in renderer.caption_rows)
    rects = renderer.text_rects
    bounds = surface.get_rect()
    for i, rect in enumerate(rects):
        assert bounds.contains(rect), f"{rect} leaves the screen"
        assert rect.collidelist(rects[i + 1 :]) == -1, f"{rect} overlaps another line"


def test_the_input_line_is_white_on_black_and_an_empty_one_still_shows(
    screen: PygameScreen, tmp_path: Path
) -> None:
    screen.show(ScreenState.IN_CALL)
    screen.show_frame(solid_frame(1280, 720, (200, 30, 40)))
    before = shot(screen, tmp_path / "before.png")
    screen.show(ScreenState.IN_CALL, typing="Bonjour")
    pixels = shot(screen, tmp_path / "typing.png")
    ((words, (x, y, w, h)),) = screen.typing_drawn
    assert words == "Bonjour"
    region, earlier = pixels[y : y + h, x : x + w], before[y : y + h, x : x + w]
    assert np.all(region == WHITE, axis=-1).sum() > 0.05 * w * h  # the letters
    assert np.all(region == (0, 0, 0), axis=-1).sum() > 0.4 * w * h  # on the black panel
    assert not np.all(earlier == WHITE, axis=-1).any()
    screen.show(ScreenState.IN_CALL, typing="")  # typed, then wiped: the panel and its cursor
    empty = shot(screen, tmp_path / "empty.png")
    assert screen.typing_drawn == []
    assert not np.array_equal(empty, before)
    screen.show(ScreenState.IN_CALL)  # no keyboard used: no panel
    assert np.array_equal(shot(screen, tmp_path / "none.png"), before)
