"""Software updates' pages in real headless Chromium, keyboard only (issue 13,
docs/updates.md): an administrator uploads a real signed RAUC bundle with the form on
``/admin/versions``, starts a rollout there, then on ``/admin/rollouts/{id}`` pauses it —
the first time answering no to the confirmation, which changes nothing — and resumes it.
Every button is reached with Tab and pressed with Enter; the state is read from the page
and from the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, expect
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
            for device_id in COUNTERS:
                session.add(
                    Device(
                        id=device_id, site=device_id.split("-")[0], name=device_id,
                        state="online", software_version="1.4.0", broker_password_hash="$7$x",
                    )
                )  # fmt: skip
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
