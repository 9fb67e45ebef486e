"""Issue 17, points 8 and 9, in real headless Chromium against the real server: the alerts
page, the call log and the audit log page through their lists and filter them with the
page's own form and links; an offline counter's measures look stale (greyed, "dernière valeur
connue il y a …") in the fleet table and on its page, and a counter that goes offline greys
out without a reload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import insert, update

from fleet_server.models import Alert, AuditEntry, CallRecord, Device
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD, seed_devices

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 15_000
GREEN = "rgb(19, 122, 59)"  # app.css --online
GREY = "rgb(91, 102, 117)"  # app.css --muted
KINDS = ("offline", "printer", "disk")


async def _log_in(page: Page, live: LiveApp) -> None:
    live.add_user("admin", role="admin", service=None)
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill("admin")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/")


async def _new_page(browser: Browser) -> Page:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 900}, locale="fr-FR", timezone_id="Europe/Paris"
    )
    page: Page = await context.new_page()
    return page


def _seed_alerts(live: LiveApp) -> None:
    now = datetime.now(UTC)
    devices = seed_devices(live.sessions, 130)
    with live.sessions.begin() as session:
        session.execute(
            insert(Alert),
            [
                {
                    "device_id": d["id"],
                    "kind": KINDS[i % len(KINDS)],
                    "detail": f"alerte {i}",
                    "raised_at": now - timedelta(minutes=i),
                }
                for i, d in enumerate(devices)
            ],
        )
        session.execute(
            insert(Alert),
            [
                {
                    "device_id": devices[i]["id"],
                    "kind": "scanner",
                    "raised_at": now - timedelta(days=3, minutes=i),
                    "cleared_at": now - timedelta(days=2, minutes=i),
                }
                for i in range(20)
            ],
        )


async def test_alerts_page_pages_and_filters(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        _seed_alerts(live)
        async with async_chromium() as browser:
            page = await _new_page(browser)
            await _log_in(page, live)
            await page.get_by_role("link", name="Alertes", exact=True).click()
            await expect(page).to_have_url(live.url + "/alerts")
            rows = page.locator("#open-alerts tbody tr")
            pager = page.locator("#alerts-pager")
            await expect(rows).to_have_count(50)
            await expect(pager).to_contain_text("50 affichées sur 130 alertes")
            await expect(rows.first).to_contain_text("Guichet 00000")  # newest first

            await pager.get_by_role("link", name="Suivantes →").click()
            await expect(rows).to_have_count(50)
            await expect(rows.first).to_contain_text("Guichet 00050")
            await pager.get_by_role("link", name="Suivantes →").click()
            await expect(rows).to_have_count(30)
            await expect(pager.get_by_role("link", name="Suivantes →")).to_have_count(0)
            await pager.get_by_role("link", name="← Précédentes").click()
            await expect(rows.first).to_contain_text("Guichet 00050")

            form = page.locator("#alert-filters")
            await form.get_by_label("Type").select_option(label="Imprimante en erreur")
            await form.get_by_role("button", name="Filtrer").click()
            await expect(rows).to_have_count(43)  # i % 3 == 1 of 130
            await expect(page.locator('#open-alerts tr[data-kind="printer"]')).to_have_count(43)
            await expect(pager).to_contain_text("43 affichées sur 43 alertes")
            await form.get_by_label("Guichet").fill("00013")
            await form.get_by_role("button", name="Filtrer").click()
            await expect(rows).to_have_count(1)
            await expect(rows).to_contain_text("alerte 13")

            await page.get_by_role("link", name="Effacer").click()
            await expect(page).to_have_url(live.url + "/alerts?")
            await expect(rows).to_have_count(50)
            await page.get_by_role("link", name="Levées").click()
            cleared = page.locator("#cleared-alerts tbody tr")
            await expect(cleared).to_have_count(20)
            await expect(cleared.first).to_contain_text("Scanner absent ou en erreur")
            await expect(page.locator("#alerts-pager")).to_contain_text("20 alertes affichées")


def _seed_logs(live: LiveApp) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    devices = seed_devices(live.sessions, 12)
    outcomes = ("hangup_agent", "missed", "cancelled")
    calls = [
        {
            "id": uuid.uuid4(),
            "device_id": devices[n % 12]["id"],
            "site": devices[n % 12]["site"],
            "service": ("caf", "msa")[n // 3 % 2],
            "requested_at": now - timedelta(minutes=7 * n),
            "answered_at": now - timedelta(minutes=7 * n - 1) if n % 3 == 0 else None,
            "ended_at": now - timedelta(minutes=7 * n - 5),
            "end_reason": outcomes[n % 3],
        }
        for n in range(120)
    ]
    entries = [
        {
            "at": now - timedelta(hours=n),
            "actor": "admin",
            "action": ("device.service", "command.send")[n % 2],
            "target": devices[n % 12]["id"],
            "detail": {},
        }
        for n in range(75)
    ]
    with live.sessions.begin() as session:
        session.execute(insert(CallRecord), calls)
        session.execute(insert(AuditEntry), entries)
    return calls, entries


async def test_call_log_and_audit_log_page_and_filter(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        calls_seeded, entries_seeded = _seed_logs(live)
        caf_missed = [
            c for c in calls_seeded if c["service"] == "caf" and c["end_reason"] == "missed"
        ]
        commands = [e for e in entries_seeded if e["action"] == "command.send"]
        async with async_chromium() as browser:
            page = await _new_page(browser)
            await _log_in(page, live)
            await page.get_by_role("link", name="Appels").click()
            calls = page.locator("#calls tbody tr")
            await expect(calls).to_have_count(50)
            await expect(page.locator("#calls-pager")).to_contain_text("50 appels affichés")
            form = page.locator("#call-filters")
            await form.get_by_label("Service").select_option(label="Caf")
            await form.get_by_label("Fin").select_option(label="Manqué (sans réponse)")
            await form.get_by_role("button", name="Filtrer").click()
            await expect(page.locator("h1")).to_have_text("Journal des appels — Caf")
            await expect(calls).to_have_count(len(caf_missed))
            missed = page.locator('#calls tr[data-end-reason="missed"]')
            await expect(missed).to_have_count(len(caf_missed))
            device = caf_missed[0]["device_id"]
            await form.get_by_label("Guichet (identifiant)").fill(device)
            await form.get_by_role("button", name="Filtrer").click()
            await expect(calls).to_have_count(
                len([c for c in caf_missed if c["device_id"] == device])
            )
            await expect(calls.first).to_contain_text(device)

            await page.get_by_text("Administration").click()  # the setup pages' menu
            await page.get_by_role("link", name="Journal d'audit").click()
            entries = page.locator("#audit tbody tr")
            pager = page.locator("#audit-pager")
            await expect(entries).to_have_count(50)
            await pager.get_by_role("link", name="Suivants →").click()
            await expect(entries).to_have_count(25)
            await expect(pager).to_contain_text("25 actes affichés")
            await (
                page.locator("#audit-filters")
                .get_by_label("Action")
                .select_option(label="Commande envoyée")
            )
            await page.locator("#audit-filters").get_by_role("button", name="Filtrer").click()
            sent = page.locator('#audit tr[data-action="command.send"]')
            await expect(sent).to_have_count(len(commands))
            await expect(entries).to_have_count(len(commands))


async def _before_color(page: Page, selector: str) -> str:
    """The colour of an element's ::before (the health dot)."""
    color: str = await page.evaluate(
        "s => getComputedStyle(document.querySelector(s), '::before').backgroundColor", selector
    )
    return color


async def test_an_offline_counter_s_measures_look_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
    async with live_app(url, dashboard_refresh_s=0.5) as live:
        now = datetime.now(UTC)
        seed_devices(live.sessions, 7)  # guichet-00003 offline; 00001 and 00002 online
        with live.sessions.begin() as session:
            session.execute(
                update(Device)
                .where(Device.id == "guichet-00003")
                .values(last_telemetry_at=now - timedelta(hours=2, minutes=10))
            )
        async with async_chromium() as browser:
            page = await _new_page(browser)
            await _log_in(page, live)
            offline = page.locator('#fleet-body tr[data-device-id="guichet-00003"]')
            online = page.locator('#fleet-body tr[data-device-id="guichet-00001"]')
            camera = "td[data-col=camera] .health"  # not by position: admins have a tick box
            await expect(online.locator(camera)).to_have_text("OK")
            await expect(online.locator(camera)).not_to_have_class("health health-ok stale")
            row = "#fleet-body tr[data-device-id='{}'] " + camera
            assert await _before_color(page, row.format("guichet-00001")) == GREEN

            await expect(offline.locator(camera)).to_have_class("health health-ok stale")
            await expect(offline.locator(camera)).to_have_css("color", GREY)
            assert await _before_color(page, row.format("guichet-00003")) != GREEN
            await expect(offline.locator(camera)).to_have_attribute(
                "title", "Dernière valeur connue il y a 2 h 10"
            )
            await expect(offline.locator("td.num.stale").first).to_have_css("color", GREY)
            note = offline.locator(".stale-note")
            await expect(note).to_have_text("valeurs reçues il y a 2 h 10")
            await expect(note).to_be_visible()

            # A counter that goes offline greys out at the next refresh, without a reload.
            await page.evaluate("window.__same_page = true")
            with live.sessions.begin() as session:
                session.execute(
                    update(Device).where(Device.id == "guichet-00001").values(state="offline")
                )
            await expect(online).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
            await expect(online.locator(camera)).to_have_class("health health-ok stale")
            await expect(online.locator(".stale-note")).to_contain_text("valeurs reçues il y a")
            assert await page.evaluate("window.__same_page === true")

            await offline.get_by_role("link", name="Guichet 00003").click()
            measures, peripherals = page.locator("#mesures"), page.locator("#peripheriques")
            await expect(measures.locator(".stale-note")).to_contain_text(
                "Dernière valeur connue il y a 2 h 10"
            )
            await expect(measures.locator(".stale-note")).to_contain_text(
                "le guichet n'est pas en ligne"
            )
            await expect(measures.locator("dd").first).to_have_css("color", GREY)
            await expect(peripherals.locator(".stale-note")).to_be_visible()
