"""The timetable page (``/admin/schedules``) in real headless Chromium against the real server.

Issue 17: the service settings' headers sit above their own fields; the counter preview stays
inside its panel with a long counter name and says what the counter shows now and once
closed; a permanence in the past is refused next to its form, which comes back filled in on
the page's GET address (a reload posts nothing); adding a closure or a permanence is
confirmed next to the rows it added; a deletion asks first. The clock is pinned to a Monday
at 10 h (Paris) of a week without a public holiday.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, expect
from sqlalchemy import func, select

from fleet_server.models import Device, Permanence, ScheduleException
from fleet_server.web.reception import request_now
from guichet.schedule import PARIS, day_fr
from tests.fleet_server.appointment_support import reference_now, seed
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOW = reference_now()  # Monday 10 h
TODAY = NOW.astimezone(PARIS).date()
LONG_NAME = "Maison des associations et de la vie locale de la commune nouvelle"


def _day_words(days: int) -> str:
    return day_fr(TODAY + timedelta(days=days))


async def _open(page: Page, live: LiveApp) -> None:
    await page.goto(live.url + "/login?next=/admin/schedules")
    await page.get_by_label("Identifiant").fill("admin")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).to_have_url(live.url + "/admin/schedules")


def _count(live: LiveApp, model: type[Permanence] | type[ScheduleException]) -> int:
    with live.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


async def test_settings_line_up_and_the_preview_fits(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        seed(live.sessions, PASSWORD)
        with live.sessions.begin() as session:
            session.get_one(Device, "x1").name = LONG_NAME
        live.app.dependency_overrides[request_now] = lambda: NOW
        async with async_chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await _open(page, live)

            # Each header's column holds its own field.
            table = page.locator("table.service-settings")
            headers = table.locator("thead th")
            fields = table.locator('tr[data-service="caf"] td')
            for column in range(1, 5):
                header = await headers.nth(column).bounding_box()
                cell = await fields.nth(column - 1).locator("input").bounding_box()
                assert header is not None
                assert cell is not None
                middle = cell["x"] + cell["width"] / 2
                assert header["x"] <= middle <= header["x"] + header["width"], column

            # Saving a service's settings is confirmed on its own row.
            caf = table.locator('tr[data-service="caf"]')
            await caf.get_by_label("Téléphone de Caf (guichet fermé)").fill("05 55 12 34 56")
            await caf.get_by_role("button", name="Enregistrer").click()
            await expect(page.locator("#services").get_by_role("status")).to_have_text(
                "Réglages de Caf enregistrés."
            )
            await expect(page.locator('tr[data-service="caf"]')).to_have_class(
                re.compile(r"\bjust-changed\b")
            )

            # The preview: within its panel and the window, in plain words.
            preview = page.locator("#preview")
            await preview.get_by_label("Guichet").select_option("x1")
            await preview.get_by_role("button", name="Afficher").click()
            await expect(page.locator("#preview-now")).to_have_text("Fermé en ce moment.")
            await expect(preview).not_to_contain_text("Affiché guichet fermé")
            await expect(page.locator("#preview-lines li")).to_have_text(["Caf : sur rendez-vous"])
            await expect(page.locator("#preview-phone")).to_have_text("Téléphone : 05 55 12 34 56")
            widths = await page.evaluate(
                """() => { const p = document.getElementById('preview');
                return [p.scrollWidth, p.clientWidth, document.documentElement.scrollWidth,
                        document.documentElement.clientWidth]; }"""
            )
            assert widths[0] <= widths[1], widths  # nothing sticks out of the panel
            assert widths[2] <= widths[3], widths  # nor out of the window


async def test_permanences_and_closures_are_refused_or_confirmed(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        seed(live.sessions, PASSWORD)
        live.app.dependency_overrides[request_now] = lambda: NOW
        async with async_chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await _open(page, live)

            # A permanence last Friday, with no agent: refused next to its form, kept.
            form = page.locator("#permanence-form")
            last_friday = (TODAY - timedelta(days=3)).isoformat()
            await form.get_by_label("Service").select_option(label="MSA")
            await form.get_by_label("Jour", exact=True).fill(last_friday)
            await form.get_by_label("Demi-journée").select_option("pm")
            await form.get_by_label("Portée").select_option(label="Site Site X")
            await form.get_by_role("button", name="Ajouter").click()
            error = page.locator("#permanences .form-error")
            await expect(error).to_have_text(
                "Cette permanence serait déjà passée : choisissez une date et des heures à venir."
            )
            await expect(page).to_have_url(live.url + "/admin/schedules#permanences")
            await expect(form.get_by_label("Service")).to_have_value("msa")
            await expect(form.get_by_label("Jour", exact=True)).to_have_value(last_friday)
            await expect(form.get_by_label("Demi-journée")).to_have_value("pm")
            await expect(form.get_by_label("Portée")).to_have_value("site:Site X")
            await page.reload()  # a GET: nothing posted again, the message shown once
            await expect(error).to_have_count(0)
            assert _count(live, Permanence) == 0

            # Tomorrow afternoon: confirmed above the permanences, the new row marked.
            await form.get_by_label("Service").select_option(label="MSA")
            await form.get_by_label("Jour", exact=True).fill(
                (TODAY + timedelta(days=1)).isoformat()
            )
            await form.get_by_label("Demi-journée").select_option("pm")
            await form.get_by_role("button", name="Ajouter").click()
            await expect(page.locator("#permanences").get_by_role("status")).to_have_text(
                f"Permanence ajoutée : MSA, le {_day_words(1)} de 14 h à 17 h, tous les guichets."
            )
            rows = page.locator("#permanences tbody tr")
            await expect(rows).to_have_count(1)
            await expect(rows).to_have_class(re.compile(r"\bjust-changed\b"))
            await expect(rows).to_contain_text("tout agent du service")

            # A closure on Wednesday: confirmed above the exceptions.
            closure = page.locator("#exception-form")
            await closure.get_by_label("Jour", exact=True).fill(
                (TODAY + timedelta(days=2)).isoformat()
            )
            await closure.get_by_label("Note").fill("Travaux")
            await closure.get_by_role("button", name="Ajouter").click()
            await expect(page.locator("#exceptions").get_by_role("status")).to_have_text(
                f"Fermeture ajoutée : tous les services, le {_day_words(2)} toute la journée, "
                "tous les guichets."
            )
            assert _count(live, ScheduleException) == 1

            # Deleting it asks first; "no" keeps it, "yes" deletes it.
            answers: list[bool] = [False, True]

            async def answer(dialog: Dialog) -> None:
                assert dialog.message == f"Supprimer l'exception du {_day_words(2)} ?"
                await (dialog.accept() if answers.pop(0) else dialog.dismiss())

            page.on("dialog", answer)
            delete = page.locator("#exceptions tbody").get_by_role("button", name="Supprimer")
            await delete.click()
            await expect(page.locator("#exceptions tbody tr[data-exception]")).to_have_count(1)
            assert _count(live, ScheduleException) == 1
            await delete.click()
            await expect(page.locator("#exceptions").get_by_role("status")).to_have_text(
                "Exception supprimée."
            )
            assert _count(live, ScheduleException) == 0
