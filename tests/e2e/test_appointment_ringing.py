"""An appointment rings its agent first, in real headless Chromium against the real server.

Two Caf agents, A (alice) and B (bob), have their consoles open in two browser contexts. A
citizen booked an appointment with B at the Monts de Châlus counter, which has no fixed
service and no open slot: the appointment alone routes its call. The counter (a signalling
client over the real ``/ws/counter``; no media needed) presses its button: B's console
lists the call and beeps, A's does not and A may not answer it; after the service's
fallback time A's console lists it too and beeps; A answers and B sees it taken.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from fleet_server.calls import admin as calls_admin
from fleet_server.models import Appointment, CallRecord, Device, Service, User
from guichet.contract import utcnow
from tests.support.browser import async_chromium, wait_js
from tests.support.live_server import LiveApp, live_app, receive, send
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MEDIA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
WAIT_MS = 20_000
FALLBACK_S = 8  # B alone for this long; room for a loaded machine's steps in between
DEVICE = "monts-de-chalus"


def _seed(live: LiveApp) -> tuple[str, dict[str, int]]:
    """Agents A and B, a counter without a fixed service, an appointment with B now."""
    for name in ("alice", "bob"):
        live.add_user(name)
    with live.sessions.begin() as session:
        session.add(Device(id=DEVICE, site="Monts de Châlus", name="Mairie"))
        session.get_one(Service, "caf").fallback_s = FALLBACK_S
        ids = {u.username: u.id for u in session.scalars(select(User))}
        now = utcnow()
        session.add(
            Appointment(
                service="caf",
                device_id=DEVICE,
                start=now - timedelta(minutes=2),
                end=now + timedelta(minutes=28),
                agent_user_id=ids["bob"],
                citizen_name="J. M.",
                created_at=now - timedelta(days=1),
                created_by="accueil",
            )
        )
    with live.sessions() as session:
        token = calls_admin.new_call_token(session, DEVICE)
    return token, ids


async def _console(browser: Browser, live: LiveApp, username: str) -> Page:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/agent")
    await wait_js(page, "window.guichetAgent && window.guichetAgent.connected")
    return page


async def test_the_booked_agent_rings_first_then_the_others(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        token, ids = _seed(live)
        async with async_chromium(MEDIA_ARGS) as browser:
            a = await _console(browser, live, "alice")
            b = await _console(browser, live, "bob")
            async with live.counter_socket(token) as counter:
                welcome = await receive(counter, "welcome")
                assert (welcome["service"], welcome["service_label"]) == ("caf", "Caf")
                call_id = str(uuid.uuid4())
                await send(counter, {"type": "call_request", "call_id": call_id})
                assert (await receive(counter, "call_queued"))["service"] == "caf"

                # B's console rings; A's lists nothing and may not take the call.
                b_row = b.locator(f'#queue li[data-call-id="{call_id}"]')
                await expect(b_row).to_contain_text("Monts de Châlus", timeout=WAIT_MS)
                assert await b.evaluate("window.guichetAgent.beeps") == 1
                answer = json.dumps({"type": "answer", "call_id": call_id})
                await a.evaluate("(m) => window.guichetAgent.ws.send(m)", answer)
                await wait_js(a, "window.guichetAgent.lastError === 'reserved'")
                await expect(a.locator("#queue li")).to_have_count(0)
                assert await a.evaluate("window.guichetAgent.beeps") == 0
                assert len(live.ctx.calls.active_calls()) == 1  # still waiting for B

                # After the fallback time A's console rings too.
                a_row = a.locator(f'#queue li[data-call-id="{call_id}"]')
                await expect(a_row).to_contain_text("Monts de Châlus", timeout=WAIT_MS)
                assert await a.evaluate("window.guichetAgent.beeps") == 1
                await expect(b_row).to_have_count(1)  # still B's too

                await a_row.get_by_role("button", name="Répondre").click()
                await receive(counter, "call_answered")
                offer = await receive(counter, "description")
                assert offer["description"]["type"] == "offer"
                await expect(a.locator("#call")).to_be_visible()
                await expect(b.locator("#queue li")).to_have_count(0)  # taken
                await expect(b.locator("#call")).to_be_hidden()

                await send(
                    counter, {"type": "hangup", "call_id": call_id, "reason": "hangup_counter"}
                )
                await expect(a.locator("#call")).to_be_hidden(timeout=WAIT_MS)
            await live.ctx.calls.settled()
            with live.sessions() as session:
                row = session.scalars(select(CallRecord)).one()
            assert (str(row.id), row.service, row.agent_user_id) == (call_id, "caf", ids["alice"])
            assert row.end_reason == "hangup_counter"
