"""A whole call in the agent console with the keyboard alone (issue 15, item 5; RGAA AA):
real headless Chromium as a Caf agent ↔ the real counter agent (simulated scanner and
printer), through the real fleet server.

After the log-in, the agent's hands never leave the keyboard: Tab to the skip link, Enter,
Tab to "Répondre" on the ringing call, Enter; the focus is then on the call's heading; Tab
to "Couper le micro", Space (the microphone's track is off), Space again; Tab to « Écrire
au citoyen », a line typed and Enter (the counter's screen shows it, the console lists it);
"Montrer la consigne", "Numériser", then "Télécharger le PDF" with Enter; the print file chosen from
the file input with Space (the file chooser is the one thing a test answers for the person),
"Imprimer"; back with Shift+Tab to "Raccrocher", Enter — and the focus lands on the queue's
heading, not lost on the page. Every stop shows a focus ring. The console in the middle of
the call (video, documents, a scanned page) passes axe-core with no critical or serious
violation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from appliance.call.machine import Phase
from appliance.hw.ports.printer import SimulatedPrinter
from tests.support.axe_check import assert_accessible
from tests.support.browser import wait_js
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.documents import pdf_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = 15
WAIT_MS = 30_000
CHOOSER_TRIES = 3  # a person presses the key again when nothing opened
CHOOSER_WAIT_MS = 5_000
MAX_TABS = 40  # a stop further than this many Tabs away is a broken focus order

# What has the focus: its id, its accessible text, and whether a focus ring shows.
FOCUSED_JS = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return {id: e.id, tag: e.tagName, text: (e.getAttribute("aria-label") || e.textContent
          || "").trim(), ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
          inMain: e.closest("main") !== null};
}"""


async def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = await page.evaluate(FOCUSED_JS)
    return info


async def tab_to(page: Page, element_id: str, *, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab) until ``element_id`` has the focus; each stop shows its ring."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MAX_TABS):
        await page.keyboard.press(key)
        now = await focused(page)
        if now["tag"] != "BODY":
            assert now["ring"], f"no visible focus on {now}"
        if now["id"] == element_id:
            return
    raise AssertionError(f"#{element_id} not reached within {MAX_TABS} × {key}")


async def tab_to_answer(page: Page) -> None:
    """From the top of the page: the skip link, the content, then the first "Répondre"."""
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    await page.keyboard.press("Enter")
    answer = page.locator("#queue li").first.get_by_role("button", name="Répondre")
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await answer.evaluate("b => b === document.activeElement"):
            assert (await focused(page))["ring"]
            return
    raise AssertionError("no « Répondre » reached with Tab")


async def scan_by_keyboard(rig: CallRig, inputs: Path) -> None:
    page = rig.page
    await tab_to(page, "scan-hint")
    await page.keyboard.press("Enter")
    await wait_for(lambda: "vitre" in str(rig.screen.info.get("document", "")), "instruction")
    await tab_to(page, "scan")
    await page.keyboard.press("Enter")
    await expect(page.locator("#scan-pages img")).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("#scan-link")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#doc-status")).to_have_text("Numérisation reçue.")
    assert (await focused(page))["id"] == "scan"  # busy, it kept the focus
    await tab_to(page, "scan-link")
    async with page.expect_download() as download_info:
        await page.keyboard.press("Enter")
    download = await download_info.value
    saved = inputs / "scan.pdf"
    await download.save_as(saved)
    await download.delete()
    assert saved.read_bytes().startswith(b"%PDF-")


async def print_by_keyboard(rig: CallRig, inputs: Path) -> None:
    page = rig.page
    two = inputs / "deux-pages.pdf"
    two.write_bytes(pdf_of(2))
    await tab_to(page, "print-file")
    chooser = None
    for _ in range(CHOOSER_TRIES):  # Chromium sometimes drops the first key on a file input
        try:
            async with page.expect_file_chooser(timeout=CHOOSER_WAIT_MS) as chooser_info:
                await page.keyboard.press("Space")
            chooser = await chooser_info.value
            break
        except PlaywrightTimeoutError:
            continue
    assert chooser is not None, "Space on « PDF à imprimer » never opened the file chooser"
    await chooser.set_files(str(two))  # what the person picks in the system's dialog
    await tab_to(page, "print")
    await page.keyboard.press("Enter")
    await expect(page.locator("#doc-status")).to_contain_text("Imprimé", timeout=WAIT_MS)
    printer = rig.appliance.hardware.printer
    assert isinstance(printer, SimulatedPrinter)
    assert len(printer.jobs) == 1


async def test_a_whole_call_with_the_keyboard_alone(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    async with call_rig(tmp_path) as rig:
        page = rig.page
        rig.press()  # the citizen, at the counter
        await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
        await expect(page.locator("#queue li")).to_have_count(1, timeout=WAIT_MS)
        await expect(page.locator("#queue-announce")).to_contain_text("Nouvel appel")

        # Answer
        await tab_to_answer(page)
        await page.keyboard.press("Enter")
        await rig.wait_browser_frames(FRAMES)
        assert rig.phase is Phase.IN_CALL
        await expect(page.locator("#call-title")).to_be_focused()

        # Mute and unmute the microphone
        await tab_to(page, "mute-mic")
        await page.keyboard.press("Space")
        mic = page.locator("#mute-mic")
        await expect(mic).to_have_attribute("aria-pressed", "true")
        mic_on = "window.guichetAgent.call.stream.getAudioTracks().every((t) => t.enabled)"
        assert await page.evaluate(mic_on) is False
        await page.keyboard.press("Space")
        await expect(mic).to_have_attribute("aria-pressed", "false")
        assert await page.evaluate(mic_on) is True

        # Write to the citizen: the line reaches the counter's screen, the console lists it
        await tab_to(page, "caption-line")
        await page.keyboard.type("Bonjour, je vous écoute.")
        await page.keyboard.press("Enter")
        await wait_for(
            lambda: rig.screen.info.get("caption") == ["Bonjour, je vous écoute."], "text shown"
        )
        await expect(page.locator("#caption-shown li")).to_have_text(["Bonjour, je vous écoute."])

        # Scan, download; print
        await wait_js(
            page,
            "window.guichetAgent.documents && window.guichetAgent.documents.state.open"
            " && window.guichetAgent.documents.state.device !== null",
            timeout_s=WAIT_MS / 1000,
        )
        await scan_by_keyboard(rig, inputs)
        await print_by_keyboard(rig, inputs)
        # With a scanned page, its link and a print's status:
        await assert_accessible(page, "the console in a call")

        # Hang up: back up to "Raccrocher"; the focus goes to the queue, not to the page
        await tab_to(page, "hangup", backwards=True)
        await page.keyboard.press("Enter")
        await rig.wait_idle()
        await expect(page.locator("#waiting-title")).to_be_focused()
        await expect(page.locator("#notice")).to_have_text("Appel terminé. Vous avez raccroché.")
