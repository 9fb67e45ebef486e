"""The console's side of issue 16 (call set-up time) in real headless Chromium, against the
real server and a fake counter speaking the contract over a real WebSocket:

- with a counter that takes them, the offer goes at once, without candidates, and each
  candidate follows it, named by the offer's ufrag, then the end of candidates;
- the camera and microphone open on the click of "Répondre", before the server's
  ``call_taken`` is there; when the call went to another agent first, they are released.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from guichet import signalling as sig
from tests.e2e.test_agent_console import MEDIA_ARGS, WAIT_MS, _log_in
from tests.support.browser import async_chromium, wait_js
from tests.support.live_server import LiveApp, live_app, receive, send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every getUserMedia call of the page: the call the console was in then, and the stream.
RECORD_MEDIA_JS = """
window.__media = [];
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async function (constraints) {
  const entry = {callIdThen: window.guichetAgent ? window.guichetAgent.callId : "?"};
  window.__media.push(entry);
  entry.stream = await original(constraints);
  return entry.stream;
};
"""
MEDIA_JS = """() => window.__media.map((m) => ({
  callIdThen: m.callIdThen,
  opened: Boolean(m.stream),
  live: m.stream ? m.stream.getTracks().filter((t) => t.readyState === "live").length : 0,
}))"""


async def _console(live: LiveApp, browser: Any) -> Page:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    await context.add_init_script(RECORD_MEDIA_JS)
    page: Page = await context.new_page()
    await _log_in(page, live)
    return page


async def test_the_offer_goes_at_once_and_its_candidates_follow(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("alice")
        token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
        async with async_chromium(MEDIA_ARGS) as browser:
            page = await _console(live, browser)
            async with live.counter_socket(token) as counter:
                await receive(counter, "welcome")
                call_id = str(uuid.uuid4())
                request = {"type": "call_request", "call_id": call_id, "trickle_ice": True}
                await send(counter, request)
                await receive(counter, "call_queued")
                row = page.locator(f'#queue li[data-call-id="{call_id}"]')
                await row.get_by_role("button", name="Répondre").click(timeout=WAIT_MS)
                await receive(counter, "call_answered")
                offer = await receive(counter, "description")
                sdp = offer["description"]["sdp"]
                assert offer["description"]["type"] == "offer"
                assert "m=video" in sdp
                assert "a=candidate" not in sdp  # sent before gathering
                ufrag = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.MULTILINE)
                assert ufrag is not None
                trickled = []
                while True:
                    message = await receive(counter, "candidate")
                    assert message["call_id"] == call_id
                    assert message["ufrag"] == ufrag.group(1)
                    if message["candidate"] is None:
                        break
                    trickled.append(sig.IceCandidate.model_validate(message["candidate"]))
                assert trickled, "no candidate before the end of candidates"
                assert any(" typ host" in c.candidate for c in trickled)
                # The camera opened on the click, before the console had the call.
                media = await page.evaluate(MEDIA_JS)
                assert [(m["callIdThen"], m["opened"]) for m in media] == [(None, True)]
                assert media[0]["live"] == 2
                await expect(page.locator("#local-video")).to_be_visible()

                await page.get_by_role("button", name="Raccrocher").click()
                await receive(counter, "call_ended", skip=("candidate",))
                await wait_js(
                    page, "window.__media[0].stream.getTracks()[0].readyState === 'ended'"
                )


class HeldConsole:
    """The console's WebSocket through Playwright: what the server sends it can be held."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[str | bytes] = []
        self._deliver: Callable[[str | bytes], None] | None = None

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()  # the page's messages go on to it as they are

        def deliver(message: str | bytes) -> None:
            ws.send(message)

        def from_server(message: str | bytes) -> None:
            if self.holding:
                self.held.append(message)
            else:
                deliver(message)

        server.on_message(from_server)
        self._deliver = deliver

    def release(self) -> list[str]:
        self.holding = False
        assert self._deliver is not None
        kinds = []
        for message in self.held:
            kinds.append(json.loads(message)["type"])
            self._deliver(message)
        self.held = []
        return kinds


async def test_media_opened_for_a_call_another_agent_took_are_released(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("alice")
        live.add_user("bob")
        token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
        bob = await live.login("bob")
        held = HeldConsole()
        async with async_chromium(MEDIA_ARGS) as browser:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            await context.add_init_script(RECORD_MEDIA_JS)
            page = await context.new_page()
            await page.route_web_socket(re.compile(r".*/ws/agent.*"), held.route)
            await _log_in(page, live)
            async with live.counter_socket(token) as counter, live.agent_socket(bob) as b:
                await receive(counter, "welcome")
                await receive(b, "queue")
                call_id = str(uuid.uuid4())
                await send(counter, {"type": "call_request", "call_id": call_id})
                await receive(counter, "call_queued")
                answer = page.locator(f'#queue li[data-call-id="{call_id}"]').get_by_role(
                    "button", name="Répondre"
                )
                await expect(answer).to_be_visible(timeout=WAIT_MS)
                # Bob takes it; alice's console does not know yet and she clicks too.
                held.holding = True
                await send(b, {"type": "answer", "call_id": call_id})
                assert (await receive(b, "call_taken"))["by_me"] is True
                await answer.click()
                async with asyncio.timeout(WAIT_MS / 1000):
                    while not [m for m in await page.evaluate(MEDIA_JS) if m["live"] == 2]:
                        await asyncio.sleep(0.05)
                # The server's "taken by someone else" (twice: bob's take, alice's answer).
                async with asyncio.timeout(WAIT_MS / 1000):
                    while [json.loads(m)["type"] for m in held.held].count("call_taken") < 2:
                        await asyncio.sleep(0.05)
                assert "call_taken" in held.release()
                await wait_js(
                    page,
                    "window.__media.every((m) => m.stream.getTracks()"
                    ".every((t) => t.readyState === 'ended'))",
                )
                assert await page.evaluate("window.guichetAgent.media") is None
                assert await page.evaluate("window.guichetAgent.callId") is None
                await expect(page.locator("#call")).to_be_hidden()
                await send(b, {"type": "hangup", "call_id": call_id, "reason": "hangup_agent"})
                await receive(counter, "call_ended", skip=("call_answered",))
        await bob.aclose()
