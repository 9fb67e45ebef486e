"""Remote support's screenshot and logs in real headless Chromium (issue 14, items 2 and 3):
on a counter's page an administrator asks to see its screen — the row turns done without a
reload and the picture, the real renderer's PNG, is drawn with its French alternative text —
then fetches its last minutes of logs and reads them on their page, filtered. The real fleet
app, a real Mosquitto and a running counter whose screen is pygame on SDL's dummy driver."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from playwright.async_api import expect

from fleet_server.models import Device
from tests.e2e.test_remote_actions_browser import log_in
from tests.fleet_server.test_support_files import SCREEN_SIZE, counter_config, running
from tests.support.browser import async_chromium
from tests.support.call_harness import wait_for
from tests.support.live_server import LiveApp, live_app
from tests.support.mosquitto import Broker

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNTER = "monts-de-chalus"
WAIT_MS = 20_000


async def test_an_admin_sees_the_counter_s_screen_then_reads_its_logs(
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # as the counter's own start sets it (guichet.logs)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    async with live_app(
        f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
    ) as live:
        live.add_user("admin", role="admin", service=None)
        token = live.add_counter(COUNTER, "Monts de Châlus", "Guichet de la mairie")
        async with running(counter_config(tmp_path, broker, live, token)):
            await wait_for(lambda: online(live), "online", 20)
            async with async_chromium() as browser:
                page = await browser.new_page(
                    locale="fr-FR", viewport={"width": 1400, "height": 900}
                )
                await log_in(page, live)
                await page.goto(f"{live.url}/devices/{COUNTER}")
                await page.evaluate("window.__same_page = true")  # lost if the page reloads
                panel = page.locator("#actions")

                await panel.get_by_role("button", name="Voir l'écran du guichet").click()
                shot = page.locator('#actions-list tr[data-action="screenshot"]').first
                await expect(shot).to_have_attribute("data-state", "done", timeout=WAIT_MS)
                await expect(shot).to_contain_text("Capture d'écran envoyée (")
                image = shot.get_by_role("img", name="Ce que l'écran du guichet affichait le")
                await image.scroll_into_view_if_needed()
                await expect(image).to_have_js_property("naturalWidth", SCREEN_SIZE[0])
                await expect(image).to_have_js_property("naturalHeight", SCREEN_SIZE[1])

                form = page.locator("#action-fetch-logs")
                await form.get_by_label("Journaux des dernières (minutes)").fill("5")
                await form.get_by_role("button", name="Récupérer les journaux").click()
                logs = page.locator('#actions-list tr[data-action="fetch_logs"]').first
                await expect(logs).to_have_attribute("data-state", "done", timeout=WAIT_MS)
                await expect(logs).to_contain_text("des 5 dernières minutes envoyées")
                assert await page.evaluate("window.__same_page === true")
                request_id = await logs.get_attribute("data-request-id")

                await logs.get_by_role("link", name="Voir les journaux").click()
                await expect(page.get_by_role("heading", level=1)).to_have_text(
                    "Journaux du guichet Guichet de la mairie"
                )
                rows = page.locator("#logs tbody tr")
                await expect(rows.filter(has_text="counter started")).to_have_count(1)
                await page.get_by_label("Niveau").select_option("warning")
                await page.get_by_role("button", name="Filtrer").click()
                await expect(page.locator('#logs tr[data-level="info"]')).to_have_count(0)
                await expect(page.locator("#logs-download")).to_have_attribute(
                    "href", f"/devices/{COUNTER}/logs/{request_id}.jsonl.gz"
                )


def online(live: LiveApp) -> bool:
    with live.sessions() as session:
        device = session.get(Device, COUNTER)
        return device is not None and device.state == "online"
