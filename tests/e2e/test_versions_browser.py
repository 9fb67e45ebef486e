"""Software updates' pages in real headless Chromium, keyboard only (issue 13,
docs/updates.md): an administrator uploads a real signed RAUC bundle with the form on
``/admin/versions``, starts a rollout there, then on ``/admin/rollouts/{id}`` pauses it —
the first time answering no to the confirmation, which changes nothing — and resumes it.
Then a rollout whose first wave is a chosen site, installed only at night: first refused
(the night's end left empty: the message linked to the fields, what was typed kept, the
page still clean for axe-core), then started. Every field and button is reached with Tab
and the arrow keys, and used with Space, the digits and Enter; the state is read from the
page, from the JSON API and from the database."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import select

from fleet_server.models import AuditEntry, Device, Release, RolloutRecord
from tests.e2e.test_remote_actions_browser import log_in
from tests.fleet_server.test_update_bundle import SUBJECT, _bundle, _certificate
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNTERS = ("gorre-01", "gorre-02", "chalus-01")
MAX_TABS = 60  # more stops than any of these pages has before its buttons


async def tab_to(page: Page, name: str) -> None:
    """Press Tab until the focused element is the button or field called ``name``."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return e ? (e.innerText || e.getAttribute('aria-label') || '').trim() : ''; }"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} not reached with Tab")


async def focused_name(page: Page) -> str:
    """The focused element's name: its label's text, else its text or ``aria-label``."""
    return str(
        await page.evaluate(
            "() => { const e = document.activeElement; if (!e) return '';"
            " const label = e.labels && e.labels.length ? e.labels[0].innerText : '';"
            " return (label || e.innerText || e.getAttribute('aria-label') || '').trim(); }"
        )
    )


async def tab_to_field(page: Page, name: str) -> None:
    """Press Tab until the focused field is the one labelled ``name``."""
    for _ in range(MAX_TABS * 2):
        await page.keyboard.press("Tab")
        if await focused_name(page) == name:
            return
    raise AssertionError(f"{name!r} not reached with Tab")


async def time_keys(browser: Browser, hour: int, minute: int) -> str:
    """The keys that type ``hour:minute`` into this browser's time fields: headless
    Chromium lays them out as its own locale says (« 10:00 PM » in en-US whatever the page's
    language), so its layout is read once on a blank page first."""
    probe = await browser.new_page()
    await probe.set_content('<input type="time" id="t">')
    await probe.focus("#t")
    await probe.keyboard.type("2200")
    layout_24h = await probe.evaluate("() => document.getElementById('t').value") == "22:00"
    await probe.close()
    if layout_24h:
        return f"{hour:02d}{minute:02d}"
    return f"{(hour - 1) % 12 + 1:02d}{minute:02d}{'P' if hour >= 12 else 'A'}"


class Confirmations:
    """The questions forms.js asks (``window.confirm``), answered as told."""

    def __init__(self, page: Page) -> None:
        self.asked: list[str] = []
        self.answer = True
        page.on("dialog", self._answer)

    async def _answer(self, dialog: Dialog) -> None:
        self.asked.append(dialog.message)
        await (dialog.accept() if self.answer else dialog.dismiss())


def _state(live: LiveApp) -> str:
    with live.sessions() as session:
        return session.scalars(select(RolloutRecord.state)).one()


def _seed_counters(session: Any) -> None:
    """The fleet's counters, online on 1.4.0, their site the id's first word."""
    for device_id in COUNTERS:
        session.add(
            Device(
                id=device_id, site=device_id.split("-")[0], name=device_id,
                state="online", software_version="1.4.0", broker_password_hash="$7$x",
            )
        )  # fmt: skip


async def test_an_admin_uploads_a_release_then_pauses_and_resumes_its_rollout(
    tmp_path: Path,
) -> None:
    signer = _certificate(tmp_path / "ca", SUBJECT)
    bundle = _bundle(tmp_path / "b", signer, version="1.5.0")
    async with live_app(
        f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        releases_dir=tmp_path / "releases",
        update_keyring=signer[1],
        public_url="https://flotte.example.fr",
    ) as live:
        live.add_user("admin", role="admin", service=None)
        with live.sessions.begin() as session:
            _seed_counters(session)
        async with async_chromium() as browser:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1366, "height": 900})
            confirmations = Confirmations(page)
            await log_in(page, live)
            await page.goto(live.url + "/admin/versions")

            # Upload: the file chosen (a file picker is the system's), then Tab and Enter.
            upload = page.locator("#upload-form")
            await upload.get_by_label("Paquet de mise à jour signé").set_input_files(bundle)
            await upload.get_by_label("Paquet de mise à jour signé").focus()
            await tab_to(page, "Déposer la version")
            await page.keyboard.press("Enter")
            await expect(page.get_by_text("Version 1.5.0 déposée et vérifiée.")).to_be_visible()
            await expect(page.locator('tr[data-release="1.5.0"]')).to_contain_text(
                "Guichet Proche 1.5.0"
            )
            with live.sessions() as session:
                release = session.scalars(select(Release)).one()
                assert Path(release.path).read_bytes() == bundle.read_bytes()

            # A rollout started from its form, the question answered yes.
            await page.locator("#rollout-form").get_by_label("Version").focus()
            await tab_to(page, "Lancer le déploiement")
            await page.keyboard.press("Enter")
            await expect(page).to_have_url(live.url + "/admin/rollouts/1")
            assert confirmations.asked[-1].startswith("Lancer ce déploiement ?")
            state = page.locator("#rollout-state-label")
            await expect(state).to_have_text("En cours")
            await expect(page.locator("#rollout-counters tbody tr")).to_have_count(len(COUNTERS))

            # Pause, answered no: nothing changes.
            confirmations.answer = False
            await tab_to(page, "Mettre en pause")
            await page.keyboard.press("Enter")
            assert confirmations.asked[-1] == "Mettre en pause ?"
            await expect(state).to_have_text("En cours")
            assert _state(live) == "running"

            # Pause, answered yes; then resume.
            confirmations.answer = True
            await page.keyboard.press("Enter")  # the button still has the focus
            await expect(page.get_by_text("Mettre en pause : fait.")).to_be_visible()
            await expect(state).to_have_text("En pause")
            assert _state(live) == "paused"
            await page.locator("body").focus()
            await tab_to(page, "Reprendre")
            await page.keyboard.press("Enter")
            await expect(page.get_by_text("Reprendre : fait.")).to_be_visible()
            await expect(state).to_have_text("En cours")
            assert _state(live) == "running"
            assert len(confirmations.asked) == 4

        with live.sessions() as session:
            acts = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
            assert [a for a in acts if a.startswith(("release.", "rollout."))] == [
                "release.upload", "rollout.create", "rollout.start", "rollout.pause",
                "rollout.resume",
            ]  # fmt: skip


async def test_an_admin_starts_a_rollout_on_a_chosen_site_at_night(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        live.add_user("admin", role="admin", service=None)
        with live.sessions.begin() as session:
            _seed_counters(session)
            session.add(
                Release(version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10,
                        sha256="a" * 64, path="/nowhere.raucb", uploaded_at=datetime.now(UTC),
                        uploaded_by="admin")
            )  # fmt: skip
        async with async_chromium() as browser:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1366, "height": 900})
            confirmations = Confirmations(page)
            await log_in(page, live)
            await page.goto(live.url + "/admin/versions")
            form = page.locator("#rollout-form")

            # The first wave: from the witnesses' radio to the sites' with an arrow key.
            await form.get_by_label("Version").focus()
            await page.keyboard.press("Tab")
            assert (await focused_name(page)).startswith("Des guichets témoins")
            await page.keyboard.press("ArrowDown")
            sites_radio = form.get_by_label("Les guichets des sites choisis")
            await expect(sites_radio).to_be_checked()
            await tab_to_field(page, "gorre (2 guichets)")
            await page.keyboard.press("Space")
            await expect(form.get_by_label("gorre (2 guichets)")).to_be_checked()

            # The night's start only: refused, back on the form as typed.
            await tab_to_field(page, "De")
            await page.keyboard.type(await time_keys(browser, 22, 0))
            await tab_to(page, "Lancer le déploiement")
            await page.keyboard.press("Enter")
            error = page.locator("#rollout-error")
            await expect(error).to_have_text(
                "Plage de nuit : indiquez l'heure de début et l'heure de fin, ou aucune des deux."
            )
            assert confirmations.asked[-1].startswith("Lancer ce déploiement ?")
            start, end = form.get_by_label("De", exact=True), form.get_by_label("à", exact=True)
            await expect(start).to_have_value("22:00")
            for field in (start, end):
                await expect(field).to_have_attribute("aria-invalid", "true")
                described = await field.get_attribute("aria-describedby") or ""
                assert "rollout-error" in described.split()
            await expect(form.get_by_label("Les guichets des sites choisis")).to_be_checked()
            await expect(form.get_by_label("gorre (2 guichets)")).to_be_checked()
            await expect(form.get_by_label("chalus (1 guichet)")).not_to_be_checked()
            with live.sessions() as session:
                assert session.scalar(select(RolloutRecord.id)) is None
            results = await Axe().run(page)
            serious = [
                v["id"] for v in results.response["violations"]
                if v["impact"] in ("critical", "serious")
            ]  # fmt: skip
            assert not serious, serious

            # The night's end typed too: started.
            await page.locator("body").focus()
            await tab_to_field(page, "à")
            await page.keyboard.type(await time_keys(browser, 6, 0))
            await tab_to(page, "Lancer le déploiement")
            await page.keyboard.press("Enter")
            await expect(page).to_have_url(live.url + "/admin/rollouts/1")
            await expect(page.get_by_text("Déploiement lancé.")).to_be_visible()
            await expect(page.locator("#rollout-plan")).to_contain_text(
                "la nuit seulement, de 22 h à 6 h (heure de Paris)"
            )
            await expect(page.locator("#rollout-counters tbody tr")).to_have_count(len(COUNTERS))

            answer = await page.request.get(live.url + "/api/v1/rollouts/1")
            assert answer.ok
            rollout = await answer.json()
            specs = [{"kind": "sites", "sites": ["gorre"]}, {"kind": "percent", "pct": 25.0},
                     {"kind": "rest"}]  # fmt: skip
            assert rollout["wave_specs"] == specs
            assert rollout["waves"] == [["gorre-01", "gorre-02"], ["chalus-01"]]
            assert (rollout["night_start"], rollout["night_end"]) == ("22:00:00", "06:00:00")
            assert (rollout["state"], rollout["max_failures"]) == ("running", 1)

        with live.sessions() as session:
            record = session.scalars(select(RolloutRecord)).one()
            assert (record.wave_specs, record.night_start, record.night_end) == (
                specs, time(22), time(6))  # fmt: skip
            acts = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
            assert [a for a in acts if a.startswith("rollout.")] == [
                "rollout.create", "rollout.start"
            ]  # fmt: skip
