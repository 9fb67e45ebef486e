"""The fleet table's bulk actions in real headless Chromium, keyboard only (issue 14, item 1):
an administrator ticks two counters of a site — one running (a real counter process,
simulated hardware, on a real Mosquitto), one offline — chooses « Rafraîchir la
configuration » and sends it. Each row says what became of its own action without a
reload: the running counter's turns from pending to done with its answer, the offline one's
is refused with the French reason; a ticked box survives the table's live refresh."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect
from sqlalchemy import select

from appliance.app import Appliance
from appliance.config import parse_config
from fleet_server.models import CommandRecord, Device
from tests.support.browser import async_chromium
from tests.support.call_harness import wait_for
from tests.support.live_server import LiveApp, live_app
from tests.support.mosquitto import Broker
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SITE = "Monts de Châlus"
COUNTER, AWAY, ELSEWHERE = "monts-de-chalus", "monts-annexe", "vallee-de-la-gorre"
WAIT_MS = 20_000


@asynccontextmanager
async def running_counter(tmp_path: Path, broker: Broker) -> AsyncIterator[None]:
    config = parse_config(
        f'[device]\nid = "{COUNTER}"\nsite = "{SITE}"\nname = "Mairie"\n'
        f'data_dir = "{tmp_path / "counter"}"\n\n'
        f'[fleet]\nmqtt_url = "{broker.url}"\nkeepalive_s = 5\ntelemetry_interval_s = 30\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
        '[hardware]\nsystem = "simulated"\n'
    )
    appliance = Appliance(config)
    task = asyncio.create_task(appliance.run())
    try:
        yield
    finally:
        await asyncio.wait_for(appliance.stop(), 5)
        await asyncio.wait_for(task, 5)


def online(live: LiveApp) -> bool:
    with live.sessions() as session:
        device = session.get(Device, COUNTER)
        return device is not None and device.state == "online"


async def log_in_by_keyboard(page: Page, live: LiveApp) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").focus()
    await page.keyboard.type("admin")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(live.url + "/")


async def tab_to(page: Page, name: str, limit: int = 80) -> None:
    """Press Tab until the element whose accessible name is ``name`` has the focus."""
    target = page.get_by_label(name, exact=True)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{name!r} never got the focus by Tab")


async def test_an_admin_acts_on_ticked_counters_by_keyboard(broker: Broker, tmp_path: Path) -> None:
    async with live_app(
        f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
        dashboard_refresh_s=1.0,
    ) as live:
        live.add_user("admin", role="admin", service=None)
        with live.sessions.begin() as session:
            session.add(Device(id=COUNTER, site=SITE, name="Mairie", state="unknown"))
            session.add(Device(id=AWAY, site=SITE, name="Annexe", state="offline"))
            session.add(Device(id=ELSEWHERE, site="Vallée de la Gorre", name="V", state="online"))
        async with running_counter(tmp_path, broker), async_chromium() as browser:
            await wait_for(lambda: online(live), "online", 20)
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1400, "height": 900})
            await log_in_by_keyboard(page, live)
            await page.evaluate("window.__same_page = true")  # lost if the page reloads
            heading = page.locator("#fleet-table th.bulk-status")
            await expect(heading).to_be_hidden()  # nothing sent yet: the table stays narrow

            await tab_to(page, f"Choisir Annexe ({SITE})")  # rows by site, then id
            await page.keyboard.press("Space")
            await tab_to(page, f"Choisir Mairie ({SITE})")
            await page.keyboard.press("Space")
            live_note = page.locator("#live")
            await expect(live_note).to_contain_text("mis à jour à")  # the table was swapped
            await page.evaluate("document.getElementById('live').textContent = ''")
            await expect(live_note).to_contain_text("mis à jour à")  # and once more
            await expect(page.get_by_label(f"Choisir Annexe ({SITE})", exact=True)).to_be_checked()
            ticked = page.get_by_label(f"Choisir Mairie ({SITE})", exact=True)
            await expect(ticked).to_be_checked()  # still ticked after the refresh
            await expect(ticked).to_be_focused()  # and the keyboard is where it was

            chosen = page.locator("#bulk-actions select[name=action]")
            await tab_to_backwards(page, chosen)
            await page.keyboard.press("Home")  # the first action…
            for _ in range(3):  # …then down to « Rafraîchir la configuration »
                await page.keyboard.press("ArrowDown")
            await expect(chosen).to_have_value("refresh_config")
            await page.keyboard.press("Tab")  # the level
            await page.keyboard.press("Tab")  # the button
            await expect(
                page.get_by_role("button", name="Envoyer aux guichets cochés")
            ).to_be_focused()
            await page.keyboard.press("Enter")

            await expect(page.locator("#bulk-message")).to_have_text(
                "« Rafraîchir la configuration » envoyé à 1 guichet(s), refusé pour 1 (la"
                " raison est sur leur ligne)."
            )
            away = page.locator(f'tr[data-device-id="{AWAY}"] [data-bulk-status]')
            await expect(away).to_have_attribute("data-state", "refused")
            await expect(away).to_be_visible()  # the column shows once something was sent
            await expect(heading).to_be_visible()
            await expect(away).to_have_text(
                "Refusée : Le guichet n'est pas en ligne : l'action ne peut pas lui parvenir."
            )
            mine = page.locator(f'tr[data-device-id="{COUNTER}"] [data-bulk-status]')
            await expect(mine).to_have_attribute("data-state", "done", timeout=WAIT_MS)
            await expect(mine).to_contain_text("Fait")
            other = page.locator(f'tr[data-device-id="{ELSEWHERE}"] [data-bulk-status]')
            await expect(other).to_have_text("")  # not ticked: nothing sent
            assert await page.evaluate("window.__same_page === true")
        with live.sessions() as session:
            sent = session.execute(select(CommandRecord.device_id, CommandRecord.name)).all()
        assert [tuple(row) for row in sent] == [(COUNTER, "refresh_config")]


async def tab_to_backwards(page: Page, target: Locator, limit: int = 80) -> None:
    """Press Shift+Tab until ``target`` has the focus."""
    for _ in range(limit):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Shift+Tab")
    raise AssertionError(f"{target} never got the focus by Shift+Tab")
