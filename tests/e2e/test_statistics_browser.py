"""The statistics page in real headless Chromium against the real server on a seeded month
(March 2025, see ``tests/support/stats_month.py``): log in as an administrator, choose the
month in the filter form, read the figures in the page's table, download the CSV through the
page's link. Also saves ``docs/screenshots/statistics.png``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support import stats_month as sm
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 15_000
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "statistics.png"


async def _log_in(page: Page, live: LiveApp) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill("admin")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/")


async def _expect_row(page: Page, selector: str, exp: sm.Expected) -> None:
    row = page.locator(selector)
    cells = sm.shown(exp)
    for col, text in cells.items():
        await expect(row.locator(f'[data-col="{col}"]')).to_have_text(text, timeout=WAIT_MS)


async def test_statistics_page_shows_the_seeded_month_and_exports_it(tmp_path: Path) -> None:
    plan = sm.plan()
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("admin", role="admin", service=None)
        sm.seed(live.sessions, plan)
        async with async_chromium() as browser:
            context = await browser.new_context(
                viewport={"width": 1800, "height": 1000}, locale="fr-FR", accept_downloads=True
            )
            page = await context.new_page()
            await _log_in(page, live)
            await page.get_by_role("link", name="Statistiques").click()
            await expect(page).to_have_url(live.url + "/statistiques")
            await page.get_by_label("Mois").fill("2025-03")
            await page.get_by_role("button", name="Afficher").click()
            await expect(page.locator("h1")).to_have_text("Statistiques — mars 2025")

            total = page.locator("tr.total")
            await expect(total.locator('[data-col="requested"]')).to_have_text("52")
            await expect(total.locator('[data-col="wait_median"]')).to_have_text("1 min 22 s")
            await expect(total.locator('[data-col="km"]')).to_have_text("1\u202f260 km")
            await _expect_row(page, "tr.total", sm.expected(plan))
            site, service = sm.SITES[1], "msa"
            selector = f'tr[data-site="{site}"][data-service="{service}"]'
            await _expect_row(page, selector, sm.expected(plan, site, service))
            assert await page.locator("tbody tr[data-site]").count() == 12
            assert await page.locator("svg rect.bar.answered").count() > 0

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="Exporter en CSV").click()
            download = await download_info.value
            assert download.suggested_filename == "statistiques-2025-03.csv"
            body = Path(await download.path()).read_bytes()
            rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
            assert rows[-1][:7] == ["2025-03", "Total", "", "52", "36", "12", "4"]
            await context.close()
