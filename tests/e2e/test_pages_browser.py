"""What a new user sees, in real headless Chromium against the real server (issue 17):
the fleet table fits a 1366 px screen (no horizontal scrolling; saves
``docs/screenshots/dashboard-1366.png``), the administrator's menu is one line there and rows
of items at 768 px, a skip link leads to the content, and the pages speak French — a
counter's events and state changes, the audit log in Paris time, the users page's sites, the
questionnaire editor, the second factor's QR code."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from appliance.hw.ports.camera import SIMULATED_CAMERA_MODEL
from fleet_server.models import Alert, AuditEntry, CallRecord, Device, EventRecord, StatusChange
from fleet_server.security import audit
from fleet_server.web.format import format_datetime
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD, device_row

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard-1366.png"
NBSP = "\u00a0"
# The demo's four sites and counters, and the widest values a row can show: a development
# version, a clock flag, every peripheral in trouble, and the alerts that go with them.
COUNTERS = (
    ("bandiat-tardoire-avenir", "Bandiat Tardoire Avenir", "Maison des associations"),
    ("pays-de-la-meteorite", "Pays de la Météorite", "Mairie"),
    ("monts-de-chalus", "Monts de Châlus", "Maison des associations"),
    ("vallee-de-la-gorre", "Vallée de la Gorre", "Centre social intercommunal"),
)
WORST = {
    "state": "silent",
    "software_version": "0.1.0.dev42+g46281d3",
    "clock_synchronised": False,
    "clock_offset_s": -754.0,
    "camera_health": "absent",
    "printer_health": "warning",
    "scanner_health": "error",
    "throttled": True,
    "cpu_temperature_c": 81.2,
    "disk_used_pct": 100.0,
}
WORST_ALERTS = ("silent", "camera", "scanner", "disk", "temperature", "throttled")
MENU_ITEMS = ".menu > li"


def _seed(live: LiveApp) -> None:
    now = datetime.now(UTC)
    telemetry = {"peripherals": {"camera": {"health": "ok", "model": SIMULATED_CAMERA_MODEL}}}
    with live.sessions.begin() as session:
        for i, (device_id, site, name) in enumerate(COUNTERS):
            row: dict[str, Any] = device_row(i, now) | {"id": device_id, "site": site, "name": name}
            if i % 2 == 0:
                row |= WORST | {"state_since": now - timedelta(hours=3, minutes=5)}
                row["open_alerts"] = len(WORST_ALERTS)
            session.add(Device(**row, service="france-travail", last_telemetry=telemetry))
            session.flush()  # the counter before its alerts
            if i % 2 == 0:
                session.add_all(
                    Alert(device_id=device_id, kind=kind, raised_at=now) for kind in WORST_ALERTS
                )
        ended = {"call_id": "c-1", "service": "france-travail", "duration_s": 75.0,
                 "reason": "hangup_counter"}  # fmt: skip
        session.add_all(
            [
                StatusChange(
                    device_id="monts-de-chalus", at=now, state="offline", reason="shutdown"
                ),
                EventRecord(
                    id=uuid.uuid4(),
                    device_id="monts-de-chalus",
                    at=now,
                    received_at=now,
                    kind="call_ended",
                    data=ended,
                ),
                CallRecord(
                    id=uuid.uuid4(),
                    device_id="monts-de-chalus",
                    site="Monts de Châlus",
                    service="france-travail",
                    requested_at=now - timedelta(minutes=3),
                    answered_at=now - timedelta(minutes=2),
                    ended_at=now,
                    end_reason="hangup_counter",
                ),
            ]
        )
        audit.record(session, "admin", "service.update", "caf", fallback_s=30, phone=None)


@asynccontextmanager
async def _admin_page(browser: Browser, live: LiveApp, width: int) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale="fr-FR")
    page = await context.new_page()
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill("admin")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/")
    try:
        yield page
    finally:
        await context.close()


@asynccontextmanager
async def _fleet(tmp_path: Path) -> AsyncIterator[tuple[LiveApp, Browser]]:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("admin", role="admin", service=None)
        _seed(live)
        async with async_chromium() as browser:
            yield live, browser


async def _rows_of(page: Page, selector: str) -> list[float]:
    """The distinct tops of the elements ``selector`` finds: how many rows they make."""
    tops = await page.eval_on_selector_all(
        selector, "els => els.map(e => Math.round(e.getBoundingClientRect().top))"
    )
    return sorted(set(tops))


async def test_the_fleet_table_fits_1366_px_and_the_menu_is_one_line(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 1366) as page:
        await expect(page.locator("#fleet-body tr[data-device-id]")).to_have_count(4)
        fit = await page.evaluate(
            """() => {
                 const table = document.querySelector('#fleet-table');
                 return {table: table.scrollWidth, box: table.parentElement.clientWidth,
                         page: document.documentElement.scrollWidth, view: window.innerWidth};
               }"""
        )
        assert fit["table"] <= fit["box"], fit  # the last column needs no scrolling
        assert fit["page"] <= fit["view"], fit
        assert len(await _rows_of(page, MENU_ITEMS)) == 1
        await expect(page.locator(MENU_ITEMS)).to_have_count(7)  # 15 pages, grouped
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT))

        # The setup pages are in the "Administration" menu; Escape closes it.
        setup = page.locator(".menu-group summary")
        await setup.click()
        users = page.get_by_role("link", name="Utilisateurs")
        await expect(users).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(users).to_be_hidden()
        await expect(setup).to_be_focused()
        await setup.click()
        await users.click()
        await expect(page).to_have_url(live.url + "/admin/users")
        await expect(page.locator(".menu-group summary.current")).to_have_text("Administration")
        await expect(page.locator('.menu a[aria-current="page"]')).to_have_text("Utilisateurs")


async def test_the_menu_at_768_px_is_rows_of_items_not_a_column(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 768) as page:
        nav = await page.locator(".mainnav").bounding_box()
        assert nav is not None
        assert nav["width"] >= 700  # the width of the page, not a 600 px column
        assert len(await _rows_of(page, MENU_ITEMS)) <= 2
        header = await page.locator(".topbar").bounding_box()
        assert header is not None
        assert header["height"] <= 160
        widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1]  # nothing sticks out sideways
        await page.locator(".menu-group summary").click()
        panel = await page.locator(".menu-group ul").bounding_box()
        assert panel is not None
        assert panel["x"] >= 0
        assert panel["x"] + panel["width"] <= 768


async def test_a_skip_link_leads_to_the_content(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 1366) as page:
        await page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Aller au contenu")
        await expect(skip).to_be_focused()
        box = await skip.bounding_box()
        assert box is not None
        assert box["y"] >= 0  # shown once focused
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "contenu"
        await page.keyboard.press("Tab")  # the next stop is in the page, not the menu
        assert await page.evaluate("document.activeElement.closest('main') !== null")


async def test_a_counters_page_and_the_audit_log_speak_french(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 1366) as page:
        await page.goto(live.url + "/devices/monts-de-chalus")
        events = page.locator("#evenements tbody tr")
        await expect(events).to_contain_text(f"Fin{NBSP}: Raccroché au guichet")
        await expect(events).to_contain_text(f"Service{NBSP}: France Travail")
        await expect(events).to_contain_text(f"Durée{NBSP}: 1 min")
        await expect(page.locator("body")).to_contain_text("Arrêt normal du guichet")
        await expect(page.locator("body")).to_contain_text(SIMULATED_CAMERA_MODEL)
        calls = page.locator("#appels table.calls tbody tr")
        await expect(calls).to_contain_text("France Travail")
        body = await page.locator("main").inner_text()
        for raw in ("Simulated", "shutdown", "duration_s", "hangup_counter", "france-travail"):
            assert raw not in body

        await page.goto(live.url + "/admin/audit")
        row = page.locator('tr[data-action="service.update"]')
        with live.sessions() as session:
            at = session.scalars(select(AuditEntry.at)).one()
        await expect(row).to_contain_text(format_datetime(at))  # Paris time
        await expect(row.locator("td").nth(3)).to_have_text("Caf")  # the service's label
        await expect(row).to_contain_text(f"Téléphone{NBSP}: —")
        await expect(row).to_contain_text(f"Sonnerie de l'agent réservé seul{NBSP}: 30 s")
        await expect(page.locator("main")).not_to_contain_text("UTC")
        await expect(page.locator("main")).not_to_contain_text("None")


async def test_the_users_page_offers_known_sites_and_sane_usernames(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 1366) as page:
        await page.goto(live.url + "/admin/users")
        create = page.locator("form[action='/admin/users']")
        sites = create.get_by_label("Site (accueil)").locator("option")
        await expect(sites).to_have_text(["—", *sorted(site for _, site, _ in COUNTERS)])
        username = create.get_by_label("Identifiant")
        await username.fill("Jean Dupont")
        await create.get_by_label("Mot de passe (10 caractères au moins)").fill(PASSWORD)
        await create.get_by_label("Rôle").select_option(label="Accueil")
        await create.get_by_label("Site (accueil)").select_option(label="Vallée de la Gorre")
        await create.get_by_role("button", name="Créer l'utilisateur").click()
        assert await username.evaluate("e => e.validity.patternMismatch")  # the browser says no
        await username.fill("accueil-gorre")
        await create.get_by_role("button", name="Créer l'utilisateur").click()
        row = page.locator('tr[data-user="accueil-gorre"]')
        await expect(row.get_by_label("Site (accueil)")).to_have_value("Vallée de la Gorre")


async def test_the_questionnaire_editor_and_the_totp_qr_code(tmp_path: Path) -> None:
    async with _fleet(tmp_path) as (live, browser), _admin_page(browser, live, 1366) as page:
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
        await page.goto(live.url + "/admin/questionnaire")
        blocks = page.locator("fieldset.question")
        await expect(blocks).to_have_count(4)  # the three default questions, one new
        await expect(blocks.nth(3).locator("legend")).to_have_text(
            "Nouvelle question (facultative)"
        )
        await expect(blocks.nth(0).get_by_label("Sert à")).to_have_value("dealt_with")
        await expect(page.locator("main")).not_to_contain_text("Clé")
        await expect(page.locator("main")).not_to_contain_text("dealt_with")

        await page.get_by_role("link", name="Mon compte").click()
        qr = page.locator("svg.totp-qr")
        await expect(qr).to_be_visible()
        await expect(qr).to_have_accessible_name("Code QR à scanner")
        box = await qr.bounding_box()
        assert box is not None
        assert min(box["width"], box["height"]) >= 150  # big enough for a phone's camera
        assert refused == []  # no Content-Security-Policy refusal
