"""The agent console in real headless Chromium (fake camera and microphone) against the real
server and a fake counter speaking the signalling contract over a real WebSocket: the call
appears in the queue with a beep, "Répondre" sends an offer with a video m-line once ICE
gathering is complete, "Raccrocher" ends the call; a hangup at the counter ends it too.
A call nobody answers says so once it is missed, and a new ring clears the notice of the
previous call. The media path with the real appliance is the lead's end-to-end test."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import async_chromium, wait_js
from tests.support.live_server import LiveApp, live_app, receive, send
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MEDIA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
WAIT_MS = 15_000
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "agent_console.png"


async def _log_in(page: Page, live: LiveApp) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill("alice")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/agent")
    await wait_js(page, "window.guichetAgent && window.guichetAgent.connected")


async def test_console_queue_answer_offer_and_hangup(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("alice")
        token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
        async with async_chromium(MEDIA_ARGS) as browser:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            await _log_in(page, live)
            async with live.counter_socket(token) as counter:
                await receive(counter, "welcome")
                call_id = str(uuid.uuid4())
                await send(counter, {"type": "call_request", "call_id": call_id})
                await receive(counter, "call_queued")

                row = page.locator(f'#queue li[data-call-id="{call_id}"]')
                await expect(row).to_contain_text("Monts de Châlus", timeout=WAIT_MS)
                await expect(row).to_contain_text("attend depuis")
                assert await page.evaluate("window.guichetAgent.beeps") >= 1

                await row.get_by_role("button", name="Répondre").click()
                await receive(counter, "call_answered")
                offer = await receive(counter, "description")
                assert offer["call_id"] == call_id
                assert offer["description"]["type"] == "offer"
                assert "m=video" in offer["description"]["sdp"]
                assert "m=audio" in offer["description"]["sdp"]
                # Sent once gathering completed: the candidates are inside (aiortc cannot
                # take them later).
                assert "a=candidate" in offer["description"]["sdp"]
                await expect(page.locator("#call")).to_be_visible()
                await expect(page.locator("#call-where")).to_contain_text("Mairie")
                assert await page.evaluate("window.guichetAgent.callId") == call_id
                await expect(page.locator("#queue li")).to_have_count(0)

                await page.get_by_role("button", name="Couper le micro").click()
                await expect(page.locator("#mute-mic")).to_have_attribute("aria-pressed", "true")
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT), full_page=True)

                await page.get_by_role("button", name="Raccrocher").click()
                ended = await receive(counter, "call_ended")
                assert (ended["call_id"], ended["reason"]) == (call_id, "hangup_agent")
                await expect(page.locator("#call")).to_be_hidden()
                assert await page.evaluate("window.guichetAgent.callId") is None
                notice = page.locator("#notice")
                await expect(notice).to_have_text("Appel terminé. Vous avez raccroché.")

                # A second call rings: the first one's end notice goes (issue 17); this one
                # is ended at the counter (a long press on its button).
                second = str(uuid.uuid4())
                await send(counter, {"type": "call_request", "call_id": second})
                await receive(counter, "call_queued")
                row = page.locator(f'#queue li[data-call-id="{second}"]')
                await expect(row).to_be_visible(timeout=WAIT_MS)
                await expect(notice).to_be_hidden()
                await row.get_by_role("button", name="Répondre").click()
                await receive(counter, "description", skip=("call_answered",))
                await send(
                    counter, {"type": "hangup", "call_id": second, "reason": "hangup_counter"}
                )
                await expect(page.locator("#notice")).to_contain_text(
                    "Le citoyen a raccroché", timeout=WAIT_MS
                )
                await expect(page.locator("#call")).to_be_hidden()
            await context.close()


async def test_a_missed_call_is_announced_and_the_next_ring_clears_it(tmp_path: Path) -> None:
    """Issue 17: a call that rang out left the console silent (only the missed count moved)."""
    db = f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
    async with live_app(db, ring_timeout_s=1.0) as live:
        live.add_user("alice")
        token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
        async with async_chromium(MEDIA_ARGS) as browser:
            page = await browser.new_page()
            await _log_in(page, live)
            notice = page.locator("#notice")
            await expect(notice).to_be_hidden()
            async with live.counter_socket(token) as counter:
                await receive(counter, "welcome")
                call_id = str(uuid.uuid4())
                await send(counter, {"type": "call_request", "call_id": call_id})
                await receive(counter, "call_queued")
                ended = await receive(counter, "call_ended")
                assert ended["reason"] == "missed"
                await expect(notice).to_have_text(
                    "Appel manqué : personne n'a répondu au guichet Monts de Châlus (Mairie).",
                    timeout=WAIT_MS,
                )
                await expect(page.locator("#missed-today")).to_have_text("1")
                await expect(page.locator("#queue li")).to_have_count(0)

                # The next ring clears it (and rings long enough to be looked at).
                live.ctx.calls.ring_timeout_s = 120.0
                await send(counter, {"type": "call_request", "call_id": str(uuid.uuid4())})
                await receive(counter, "call_queued")
                await expect(page.locator("#queue li")).to_have_count(1, timeout=WAIT_MS)
                await expect(notice).to_be_hidden()
