"""The reception page in real headless Chromium against the real server.

A reception user of site X logs in and sees their site's counters with their state and the
week's openings (an MSA walk-in slot every working afternoon, the Caf appointment window on
Tuesdays), books an appointment for a citizen through the two forms (service, counter and
day; then slot, agent, first name and phone) — a refused attempt first, which comes back
filled in on a GET address —, sees it confirmed and listed, finds its slot no longer
offered, and cancels it after confirming. The page's clock is pinned to a Monday at 10 h
(Paris) of a week without a public holiday, so what "today" and "this week" show does not
depend on when the test runs. Saves docs/screenshots/reception.png.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, expect
from sqlalchemy import select

from fleet_server.models import Appointment, Device, ScheduleRule
from fleet_server.web.reception import request_now
from guichet.contract import utcnow
from guichet.schedule import PARIS, day_fr
from tests.fleet_server.appointment_support import SITE_X, reference_now, seed, slot
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "reception.png"
NOW = reference_now()  # Monday 10 h
TODAY = NOW.astimezone(PARIS).date()
TOMORROW = TODAY + timedelta(days=1)  # Tuesday: the Caf appointment window, 9 h – 10 h


def _seed(live: LiveApp) -> dict[str, int]:
    ids = seed(live.sessions, PASSWORD)
    with live.sessions.begin() as session:
        x1 = session.get_one(Device, "x1")
        x1.state_since = x1.last_telemetry_at = utcnow()  # fresh: the health check keeps it
        for weekday in range(5):  # MSA walk-in, Monday to Friday afternoons, at site X only
            session.add(ScheduleRule(service="msa", mode="slot", site=SITE_X, weekday=weekday,
                                     start_time=time(14), end_time=time(16, 30)))  # fmt: skip
    live.app.dependency_overrides[request_now] = lambda: NOW
    return ids


async def _search(page: Page, service: str, counter: str) -> None:
    search = page.locator("#slot-search")
    await search.get_by_label("Service").select_option(label=service)
    await search.get_by_label("Guichet").select_option(label=counter)
    await search.get_by_label("Jour").fill(TOMORROW.isoformat())
    await search.get_by_role("button", name="Voir les créneaux libres").click()


async def test_reception_books_and_cancels_an_appointment(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        ids = _seed(live)
        async with async_chromium() as browser:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 1000}, locale="fr-FR", timezone_id="Europe/Paris"
            )
            page = await context.new_page()
            await page.goto(live.url + "/login?next=/reception")
            await page.get_by_label("Identifiant").fill("accueil-x")
            await page.get_by_label("Mot de passe").fill(PASSWORD)
            await page.get_by_role("button", name="Se connecter").click()
            await expect(page).to_have_url(live.url + "/reception")
            await expect(page.locator("h1")).to_have_text("Accueil · Site X")

            # The site's counters and their state; not another site's.
            counters = page.locator("table.counters tbody tr")
            await expect(counters).to_have_count(1)
            await expect(counters).to_contain_text("Mairie X")
            await expect(counters).to_contain_text("En ligne")
            await expect(page.locator("body")).not_to_contain_text("Mairie Y")

            # Today's and the week's openings.
            await expect(page.locator("#today-openings tbody tr")).to_have_text(
                ["14 h – 16 h 30 MSA accès libre Mairie X"], use_inner_text=True
            )
            tomorrow = f"Demain, {day_fr(TOMORROW)}"
            week = page.locator("#week-openings tbody tr")
            await expect(week).to_have_count(5)  # Tuesday's Caf window, MSA Tuesday to Friday
            await expect(week.nth(0)).to_contain_text(tomorrow)
            await expect(week.nth(0)).to_contain_text("9 h – 10 h")
            await expect(week.nth(0)).to_contain_text("sur rendez-vous")
            await expect(week.nth(1)).to_contain_text("14 h – 16 h 30")
            await expect(week.filter(has_text="MSA")).to_have_count(4)

            # A refused booking (a phone number too short) comes back filled in, on a GET
            # address: reloading it posts nothing.
            await _search(page, "Caf", "Mairie X")
            booking = page.locator("#booking-form")
            slots = booking.get_by_label("Créneau").locator("option")
            await expect(slots).to_have_text(["9 h – 9 h 30", "9 h 30 – 10 h"])
            await booking.get_by_label("Créneau").select_option(label="9 h – 9 h 30")
            await booking.get_by_label("Agent (facultatif)").select_option(label="agent-b")
            await booking.get_by_label("Prénom ou initiales").fill("Léa")
            await booking.get_by_label("Téléphone (facultatif)").fill("06 12")
            await booking.get_by_role("button", name="Réserver").click()
            await expect(page.locator("#reserver .form-error")).to_have_text(
                "Numéro de téléphone invalide (exemple : 06 12 34 56 78)."
            )
            assert page.url.startswith(live.url + "/reception?")
            assert "guichet=x1" in page.url
            await expect(booking.get_by_label("Prénom ou initiales")).to_have_value("Léa")
            await expect(booking.get_by_label("Téléphone (facultatif)")).to_have_value("06 12")
            await expect(booking.get_by_label("Créneau")).to_have_value(
                slot(TOMORROW, 9).isoformat()
            )
            await expect(booking.get_by_label("Agent (facultatif)")).to_have_value(
                str(ids["agent-b"])
            )
            await page.reload()
            await expect(page.locator("#reserver .form-error")).to_have_count(0)  # shown once
            with live.sessions() as session:
                assert session.scalars(select(Appointment)).all() == []

            # Book tomorrow 9 h with agent B for Léa: confirmed above the appointments.
            await booking.get_by_label("Créneau").select_option(label="9 h – 9 h 30")
            await booking.get_by_label("Agent (facultatif)").select_option(label="agent-b")
            await booking.get_by_label("Prénom ou initiales").fill("Léa")
            await booking.get_by_label("Téléphone (facultatif)").fill("0612345678")
            await booking.get_by_role("button", name="Réserver").click()

            day = day_fr(TOMORROW)  # "mardi 1er avril" on the first of a month
            await expect(page.locator("#rendez-vous").get_by_role("status")).to_have_text(
                f"Rendez-vous réservé le {day} de 9 h à 9 h 30 au guichet Mairie X."
            )
            listed = page.locator("#appointments tbody tr")
            await expect(listed).to_have_count(1)
            await expect(listed).to_have_class(re.compile(r"\bjust-changed\b"))
            for text in (f"{tomorrow}, 9 h – 9 h 30", "Caf", "Mairie X", "agent-b", "Léa",
                         "06 12 34 56 78"):  # fmt: skip
                await expect(listed).to_contain_text(text)
            with live.sessions() as session:
                row = session.scalars(select(Appointment)).one()
            assert (row.device_id, row.agent_user_id, row.start) == (
                "x1",
                ids["agent-b"],
                slot(TOMORROW, 9),
            )

            # The booked slot is no longer offered.
            await _search(page, "Caf", "Mairie X")
            await expect(slots).to_have_text(["9 h 30 – 10 h"])
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Cancel it, after saying yes: gone from the list, the slot free again.
            cancel = listed.get_by_role("button", name="Annuler le rendez-vous")
            questions: list[str] = []

            async def answer(dialog: Dialog) -> None:
                questions.append(dialog.message)
                await (dialog.accept() if len(questions) > 1 else dialog.dismiss())

            page.on("dialog", answer)
            await cancel.click()  # "no": nothing happens
            await expect(listed).to_have_count(1)
            assert questions == [
                f"Annuler le rendez-vous du {day} de 9 h à 9 h 30 (Léa) ? "
                "Le créneau redeviendra libre."
            ]
            with live.sessions() as session:
                assert session.get_one(Appointment, row.id).cancelled_at is None
            await cancel.click()  # "yes"
            await expect(page.locator("#rendez-vous").get_by_role("status")).to_have_text(
                f"Rendez-vous du {day} de 9 h à 9 h 30 annulé."
            )
            await expect(listed).to_have_text(["Aucun rendez-vous à venir."])
            with live.sessions() as session:
                assert session.get_one(Appointment, row.id).cancelled_at == NOW
            await _search(page, "Caf", "Mairie X")
            await expect(slots).to_have_text(["9 h – 9 h 30", "9 h 30 – 10 h"])
            await context.close()


async def test_a_reception_login_lands_on_its_site_page(tmp_path: Path) -> None:
    """Issue 17: from the plain login page (no ``next``), a reception user lands on
    /reception, not on the fleet; the login page does not call itself the fleet's
    dashboard; and the site's counters page counts that site's counters only."""
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        _seed(live)
        with live.sessions.begin() as session:  # elsewhere: two more online counters
            for i in range(2):
                session.add(Device(id=f"z{i}", site="Site Z", name=f"Mairie Z{i}", state="online",
                                   state_since=utcnow(), last_telemetry_at=utcnow()))  # fmt: skip
        async with async_chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(live.url + "/")
            await expect(page).to_have_url(live.url + "/login?next=/")
            await expect(page.locator(".login-card .lead")).not_to_contain_text("flotte")
            await page.goto(live.url + "/login")
            await page.get_by_label("Identifiant").fill("accueil-x")
            await page.get_by_label("Mot de passe").fill(PASSWORD)
            await page.get_by_role("button", name="Se connecter").click()
            await expect(page).to_have_url(live.url + "/reception")
            await expect(page.locator("h1")).to_have_text("Accueil · Site X")

            await page.get_by_role("link", name="Guichets du site").click()
            await expect(page.locator("#fleet-body tr")).to_have_count(1)
            await expect(page.locator("#fleet-body")).to_contain_text("Mairie X")
            await expect(page.locator('[data-count="online"]')).to_have_text("1")
            await expect(page.locator('[data-count="offline"]')).to_have_text("0")
            # Their alerts tile lists their counters with alerts (they have no alerts page).
            await page.locator("a.tile.alerts").click()
            await expect(page).to_have_url(live.url + "/?alerts=1")
            await expect(page.locator("h1")).to_have_text("Flotte des guichets")
