"""Text in the call (issue 15, item 3), end to end: real headless Chromium as the agent ↔
the real counter, its screen the real pygame adapter drawing in memory (SDL's dummy driver).

The agent types a line in « Écrire au citoyen » and presses Enter: the counter's screen
draws it large, white on black, over the agent's video (the rendered frame is read back
where the renderer says it drew the line); the console lists what the screen shows (the
counter's acknowledgement). "Effacer l'écran" wipes it; the end of the call forgets it.
The lines cross the call's data channel only: afterwards, neither the fleet server's
database nor any log line nor any file the test's processes wrote holds them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pygame
import pytest
from playwright.async_api import expect

from appliance.call.machine import Phase
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.theme import WHITE
from tests.support.axe_check import assert_accessible
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.leaks import files_holding

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = 15
WAIT_MS = 30_000
LINE = "Votre dossier 58-QX est complet, Madame Ferrand."
SECOND = "Je vous envoie le formulaire."
MARKERS = ("58-QX", "Ferrand", "formulaire")  # any of these anywhere is a leak


def drawn_text(screen: PygameScreen) -> str:
    return " ".join(words for words, _ in screen.caption_drawn)


def pixels_of(screen: PygameScreen, path: Path) -> np.ndarray:  # type: ignore[type-arg]
    screen.screenshot(path)
    surface = pygame.image.load(str(path))
    pixels: np.ndarray = pygame.surfarray.array3d(surface).swapaxes(0, 1)  # type: ignore[type-arg]
    path.unlink()
    return pixels


async def type_line(rig: CallRig, text: str) -> None:
    field = rig.page.get_by_label("Écrire au citoyen")
    await field.focus()
    await rig.page.keyboard.type(text)
    await rig.page.keyboard.press("Enter")
    await expect(field).to_have_value("")


async def test_a_typed_line_is_drawn_on_the_counter_and_kept_nowhere(
    tmp_path: Path,
    dummy_screen: PygameScreen,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("appliance", "fleet_server", "guichet"):
        caplog.set_level(logging.DEBUG, logger=name)
    screen = dummy_screen
    async with call_rig(tmp_path, screen=screen) as rig:
        page = rig.page
        rig.press()
        await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
        await rig.answer()
        await rig.wait_browser_frames(FRAMES)
        await page.wait_for_function(
            "() => { const c = window.guichetAgent.caption; return c && c.state.open; }",
            timeout=WAIT_MS,
        )
        await wait_for(lambda: screen.frames_received > FRAMES, "the agent's video on screen")
        before = pixels_of(screen, tmp_path / "before.png")
        assert screen.caption_drawn == []

        # The agent types; the counter draws the line large over the video, and says so.
        await type_line(rig, LINE)
        await wait_for(lambda: drawn_text(screen) == LINE, "the line drawn on the counter")
        after = pixels_of(screen, tmp_path / "after.png")
        for _, (x, y, w, h) in screen.caption_drawn:
            assert h >= 40  # 72-px type at 1080 lines, 48 px on this 720-line screen
            region, earlier = after[y : y + h, x : x + w], before[y : y + h, x : x + w]
            assert np.all(region == WHITE, axis=-1).sum() > 0.05 * w * h  # the letters
            assert np.all(region == (0, 0, 0), axis=-1).sum() > 0.4 * w * h  # on black
            assert not np.array_equal(region, earlier)  # drawn over what the video showed
        await expect(page.locator("#caption-shown li")).to_have_text([LINE])
        await expect(page.locator("#caption-status")).to_have_text("Affiché au guichet.")
        await type_line(rig, SECOND)
        await wait_for(lambda: drawn_text(screen) == f"{LINE} {SECOND}", "two lines drawn")
        await expect(page.locator("#caption-shown li")).to_have_text([LINE, SECOND])
        await assert_accessible(rig.page, "the console with text in the call")

        # "Effacer l'écran" wipes the screen's lines and the console's list.
        await page.get_by_role("button", name="Effacer l'écran").click()
        await wait_for(lambda: screen.caption_drawn == [], "the lines wiped")
        await expect(page.locator("#caption-shown li")).to_have_count(0)
        await type_line(rig, LINE)
        await wait_for(lambda: drawn_text(screen) == LINE, "the line drawn again")
        assert rig.phase is Phase.IN_CALL

        # The call ends: the counter forgets the lines.
        await page.get_by_role("button", name="Raccrocher").click()
        await rig.wait_idle()
        assert rig.agent._caption_lines == []
        await wait_for(lambda: screen.caption_drawn == [], "no line after the call")

    # Nothing of it on the server's side or in any log: the database, every file the
    # server and the counter wrote (tmp_path), every log record, the processes' output.
    assert (tmp_path / "fleet.sqlite3").is_file()
    assert files_holding(tmp_path, MARKERS) == []
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    assert not [m for m in MARKERS if m in logged]
    out, err = capfd.readouterr()
    assert not [m for m in MARKERS if m in out + err]
