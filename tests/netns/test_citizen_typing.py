"""The citizen types back (issue 15, item 3), end to end: keys typed on the counter's USB
keyboard reach the agent's console in real headless Chromium.

The counter's screen is the real pygame adapter drawing in memory (SDL's dummy driver); the
keys are put on SDL's own event queue, as SDL's KMS/DRM driver queues them on the Pi
(``tests/support/sdl_keys.py``), and everything after is the real counter: the keyboard
adapter, the call agent, the text session, aiortc's data channel. The line is drawn on the
counter's screen as it is typed; Enter sends it and the console lists it, « Citoyen : … »,
in a polite live region. Before and after the call the keyboard does nothing. Afterwards,
neither the fleet server's database nor any log line nor any file the test's processes
wrote holds what was typed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from playwright.async_api import expect

from appliance.call.machine import Phase
from appliance.hw.screen_pygame.adapter import PygameScreen
from tests.support.axe_check import assert_accessible
from tests.support.call_harness import call_rig, wait_for
from tests.support.leaks import files_holding
from tests.support.sdl_keys import type_keys

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = 15
WAIT_MS = 30_000
BEFORE = "Allo 71-KW\n"  # typed at the idle screen: goes nowhere
LINE = "Je n'entends rien, mon dossier est le 58-QX"
SECOND = "Merci Madame Ferrand"
AFTER = "Encore 93-ZT\n"  # typed after the call: goes nowhere
MARKERS = ("71-KW", "58-QX", "Ferrand", "93-ZT")  # any of these anywhere is a leak


def drawn_draft(screen: PygameScreen) -> str:
    return " ".join(words for words, _ in screen.typing_drawn)


async def keys_taken(screen: PygameScreen, tmp_path: Path) -> None:
    """Returns once the render thread read the keys typed so far and their callbacks ran:
    a screenshot is one more turn of its loop, and the keys were handed to the asyncio
    loop (FIFO) before the screenshot's end was."""
    await asyncio.to_thread(screen.screenshot, tmp_path / "turn.png")
    (tmp_path / "turn.png").unlink()


async def test_keys_typed_at_the_counter_reach_the_agents_console_and_stay_nowhere(
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
        citizen = page.locator("#caption-citizen li")
        agent = rig.agent
        type_keys(BEFORE)  # outside a call the keyboard does nothing
        await keys_taken(screen, tmp_path)
        assert agent._typing is None
        rig.press()
        await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
        await rig.answer()
        await rig.wait_browser_frames(FRAMES)
        await page.wait_for_function(
            "() => { const c = window.guichetAgent.caption; return c && c.state.open; }",
            timeout=WAIT_MS,
        )
        await wait_for(lambda: screen.frames_received > FRAMES, "the agent's video on screen")
        assert screen.typing_drawn == []
        assert agent._typing is None
        await expect(citizen).to_have_count(0)
        await expect(page.locator("#caption-citizen")).to_have_attribute("aria-live", "polite")

        # The citizen types: the line is drawn on the counter as typed, Backspace edits,
        # and nothing reaches the console before Enter.
        type_keys("Je n'entends rieb\bn")
        await wait_for(lambda: drawn_draft(screen) == "Je n'entends rien", "the draft drawn")
        type_keys(LINE.removeprefix("Je n'entends rien"))
        # Longer than the screen's width: its end is drawn, as in an input field.
        await wait_for(lambda: drawn_draft(screen).endswith("est le 58-QX"), "its end drawn")
        assert drawn_draft(screen).startswith("…")
        assert agent._typing is not None
        assert agent._typing.draft == LINE
        await expect(citizen).to_have_count(0)
        type_keys("\n")
        await expect(citizen).to_have_text([f"Citoyen : {LINE}"], timeout=WAIT_MS)
        await wait_for(lambda: screen.typing_drawn == [], "the input line empty again")
        assert agent._typing is not None
        assert agent._typing.sent == LINE
        type_keys(SECOND + "\n")
        await expect(citizen).to_have_text([f"Citoyen : {LINE}", f"Citoyen : {SECOND}"])
        await assert_accessible(rig.page, "the console with the citizen's lines")
        assert rig.phase is Phase.IN_CALL

        # The call ends: the counter and the console forget the lines; the keyboard is idle.
        await page.get_by_role("button", name="Raccrocher").click()
        await rig.wait_idle()
        assert agent._typing is None
        await expect(citizen).to_have_count(0)
        type_keys(AFTER)
        await keys_taken(screen, tmp_path)
        assert agent._typing is None
        assert screen.typing_drawn == []

    # Nothing of it on the server's side or in any log: the database, every file the
    # server and the counter wrote (tmp_path), every log record, the processes' output.
    assert (tmp_path / "fleet.sqlite3").is_file()
    assert files_holding(tmp_path, MARKERS) == []
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    assert not [m for m in MARKERS if m in logged]
    out, err = capfd.readouterr()
    assert not [m for m in MARKERS if m in out + err]
