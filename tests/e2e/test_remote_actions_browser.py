"""Remote support in real headless Chromium (issue 14, item 1): an administrator, on a
counter's page, restarts the counter — the list says pending, then done with the counter's
answer, without a reload — and, once the counter is back (started again as systemd would),
runs its self-test and reads each check's result. The real fleet app, a real Mosquitto and
a running counter (simulated hardware, its camera slowed so the self-test takes a moment)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from appliance.app import Appliance
from appliance.config import ApplianceConfig, parse_config
from appliance.hw.ports.camera import SimulatedCamera
from appliance.wiring import Hardware, build_hardware
from fleet_server.models import Device
from guichet import contract
from tests.support.browser import async_chromium
from tests.support.call_harness import wait_for
from tests.support.live_server import LiveApp, live_app
from tests.support.mosquitto import Broker
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNTER = "monts-de-chalus"
WAIT_MS = 20_000
CAMERA_CHECK_S = 1.5  # long enough to see the self-test pending


class SlowCamera(SimulatedCamera):
    async def state(self) -> contract.Peripheral:
        await asyncio.sleep(CAMERA_CHECK_S)
        return await super().state()


def slow_camera(config: ApplianceConfig, loop: asyncio.AbstractEventLoop) -> Hardware:
    hardware = build_hardware(config, loop)
    hardware.camera = SlowCamera()
    return hardware


def counter_config(tmp_path: Path, broker: Broker) -> ApplianceConfig:
    return parse_config(
        f'[device]\nid = "{COUNTER}"\nsite = "Monts de Châlus"\nname = "Guichet de la mairie"\n'
        f'data_dir = "{tmp_path / "counter"}"\n\n'
        f'[fleet]\nmqtt_url = "{broker.url}"\nkeepalive_s = 5\ntelemetry_interval_s = 30\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
        '[hardware]\nsystem = "simulated"\n'
    )


def state_of(live: LiveApp) -> str | None:
    with live.sessions() as session:
        device = session.get(Device, COUNTER)
        return device.state if device is not None else None


@asynccontextmanager
async def serving(appliance: Appliance) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(appliance.run())
    try:
        yield task
    finally:
        await asyncio.wait_for(appliance.stop(), 5)
        await asyncio.wait_for(task, 5)


async def log_in(page: Page, live: LiveApp) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill("admin")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/")


async def test_an_admin_restarts_a_counter_then_reads_its_selftest(
    broker: Broker, tmp_path: Path
) -> None:
    async with live_app(
        f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
    ) as live:
        live.add_user("admin", role="admin", service=None)
        config = counter_config(tmp_path, broker)
        first = Appliance(config)
        running = asyncio.create_task(first.run())
        try:
            await wait_for(lambda: state_of(live) == "online", "online", 20)
            await restart_then_selftest(live, config, running)
        finally:
            if not running.done():
                await asyncio.wait_for(first.stop(), 5)
            await asyncio.gather(running, return_exceptions=True)


async def restart_then_selftest(
    live: LiveApp, config: ApplianceConfig, running: asyncio.Task[None]
) -> None:
    async with async_chromium() as browser:
        page = await browser.new_page(locale="fr-FR", viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await log_in(page, live)
        await page.goto(f"{live.url}/devices/{COUNTER}")
        await page.evaluate("window.__same_page = true")  # lost if the page reloads
        panel = page.locator("#actions")
        await expect(panel.get_by_role("heading", name="Actions à distance")).to_be_visible()

        await panel.get_by_role("button", name="Redémarrer le logiciel").click()
        await expect(page.locator("#actions-message")).to_have_text(
            "« Redémarrer le logiciel » envoyé au guichet."
        )
        restart = page.locator('#actions-list tr[data-action="restart"]').first
        await expect(restart).to_have_attribute("data-state", "done", timeout=WAIT_MS)
        await expect(restart).to_contain_text("Fait")
        await expect(restart).to_contain_text("Redémarrage du logiciel du guichet.")
        await asyncio.wait_for(running, 20)  # the counter stopped cleanly (exit 0)
        await wait_for(lambda: state_of(live) == "offline", "offline", 20)

        refused = panel.get_by_role("button", name="Lancer l'autotest")
        await refused.click()  # while it is away: refused, clearly
        await expect(page.locator("#actions-message .form-error")).to_have_text(
            "« Lancer l'autotest » refusé : le guichet n'est pas en ligne : l'action ne"
            " peut pas lui parvenir."
        )

        async with serving(Appliance(config, build=slow_camera)):  # systemd restarts it
            await wait_for(lambda: state_of(live) == "online", "online again", 20)
            await panel.get_by_role("button", name="Lancer l'autotest").click()
            selftest = page.locator('#actions-list tr[data-action="selftest"]').first
            await expect(selftest).to_have_attribute("data-state", "pending")
            await expect(selftest).to_contain_text("En attente du guichet")
            await expect(selftest).to_have_attribute("data-state", "done", timeout=WAIT_MS)
            await expect(selftest).to_contain_text("Autotest réussi (6 contrôles).")
            camera = selftest.locator('li[data-check="camera"]')
            await expect(camera).to_have_attribute("data-outcome", "ok")
            await expect(camera).to_contain_text("Caméra : réussi — caméra présente")
            await expect(selftest.locator('li[data-check="broker"]')).to_contain_text(
                "Courtier MQTT : réussi — 127.0.0.1:"
            )
        assert await page.evaluate("window.__same_page === true")
