"""Remote documents end to end: real headless Chromium as the agent ↔ the real counter, its
scanner on SANE's ``test`` backend and its printer a real CUPS cups-pdf queue (reached over
CUPS's Unix socket, which crosses network namespaces).

- scan at 300 dpi grey → thumbnails, then the agent downloads a valid PDF whose page has the
  scanner's pixel size, while the video keeps flowing;
- print a generated 3-page PDF → cups-pdf's output has 3 pages; with the queue disabled the
  agent sees the failure and its reason;
- a non-PDF named .pdf, a 200 MB file, an encrypted PDF, a 5,000-page PDF and a jammed
  scanner → each refused with its French message, and the call goes on;
- after the call, no document is left on disk: the counter's directories, the temporary
  directories and CUPS's spool are searched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from playwright.async_api import expect

from appliance.call.machine import Phase
from appliance.hw.sane.scanner import SaneScanner
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.cups import (
    CupsQueues,
    cups_queues_fixture,  # noqa: F401  # the session fixture
    cups_scheduler_fixture,  # noqa: F401  # the session fixture
)
from tests.support.documents import pdf_of
from tests.support.sane import (
    NO_FAULT,
    fault,
    sane_test_backend_fixture,  # noqa: F401  # the session fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = 15
WAIT_MS = 30_000


def counter_documents(queues: CupsQueues, device: str, private_dir: Path) -> str:
    return f"""
printer = "cups"
printer_queue = "{queues.pdf}"
printer_server = "{queues.server}"
scanner = "sane"
scanner_device = "{device}"

[documents]
private_dir = "{private_dir}"
max_bytes = {20 * 1024 * 1024}
max_pages = 50
"""


async def connect_call(rig: CallRig) -> None:
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
    await rig.answer()
    await rig.wait_browser_frames(FRAMES)
    await rig.page.wait_for_function(
        "() => { const d = window.guichetAgent.documents;"
        " return d && d.state.open && d.state.device !== null; }",
        timeout=WAIT_MS,
    )


async def documents_state(rig: CallRig) -> dict[str, Any]:
    state: dict[str, Any] = await rig.page.evaluate("() => window.guichetAgent.documents.state")
    return state


async def print_file(rig: CallRig, path: Path) -> None:
    await rig.page.set_input_files("#print-file", str(path))
    await rig.page.get_by_role("button", name="Imprimer", exact=True).click()


async def wait_error(rig: CallRig, count: int) -> str:
    await rig.page.wait_for_function(
        f"() => window.guichetAgent.documents.state.errors.length >= {count}", timeout=WAIT_MS
    )
    await expect(rig.page.locator("#doc-error")).to_be_visible()
    errors = (await documents_state(rig))["errors"]
    message: str = errors[count - 1]["message"]
    assert await rig.page.locator("#doc-error").text_content() == message
    await expect(rig.page.locator("#print")).to_be_enabled(timeout=WAIT_MS)
    assert rig.phase is Phase.IN_CALL  # the call goes on
    return message


def document_files(roots: list[Path], spools: list[Path], since: float) -> list[Path]:
    """Files written since ``since`` that hold a document: a PDF or a CUPS job file."""
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if "playwright" in str(path) or not path.is_file() or path.is_symlink():
                continue  # Chromium's profile: the agent's machine, not the counter
            try:
                if path.stat().st_mtime < since:
                    continue
                with path.open("rb") as f:
                    head = f.read(5)
            except OSError:
                continue
            is_job = root in spools and path.name.startswith(("d", "c"))
            if head == b"%PDF-" or is_job:
                found.append(path)
    return found


async def test_scan_print_and_bad_input_through_the_browser(
    tmp_path: Path, cups_queues: CupsQueues, sane_test_backend: str
) -> None:
    started = time.time() - 1
    private_dir = tmp_path / "private"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    extra = counter_documents(cups_queues, sane_test_backend, private_dir)
    async with call_rig(tmp_path, counter_extra=extra) as rig:
        scanner = rig.appliance.hardware.scanner
        assert isinstance(scanner, SaneScanner)
        scanner.extra_options = NO_FAULT
        await connect_call(rig)
        page = rig.page
        device = (await documents_state(rig))["device"]
        assert device["scanner"]["available"]
        assert device["printer"]["available"]

        # --- scan 300 dpi grey; the video keeps flowing ------------------------------------
        frames_before = ((await rig.browser_stats()) or {})["framesDecoded"]
        await page.select_option("#scan-resolution", "300")
        await page.select_option("#scan-mode", "gray")
        await page.select_option("#scan-source", "flatbed")
        await page.get_by_role("button", name="Montrer la consigne").click()
        await wait_for(
            lambda: "vitre" in str(rig.screen.info.get("document", "")), "instruction on screen"
        )
        await page.get_by_role("button", name="Numériser").click()
        await expect(page.locator("#scan-pages img")).to_have_count(1, timeout=WAIT_MS)
        link = page.locator("#scan-link")
        await expect(link).to_be_visible(timeout=WAIT_MS)
        async with page.expect_download() as download_info:
            await link.click()
        download = await download_info.value
        saved = inputs / "scan.pdf"
        await download.save_as(saved)
        await download.delete()
        with pikepdf.open(saved) as scanned:
            assert len(scanned.pages) == 1
            images = [
                x
                for x in scanned.pages[0].Resources.XObject.values()
                if x.Subtype == pikepdf.Name.Image
            ]
            assert [(int(i.Width), int(i.Height)) for i in images] == [(2362, 2362)]
        scans = (await documents_state(rig))["scans"]
        assert scans[0]["pages"] == 1
        assert scans[0]["size"] == saved.stat().st_size
        await rig.wait_browser_frames(frames_before + FRAMES)  # video continued
        assert "reprendre" in str(rig.screen.info.get("document", ""))

        # --- print a 3-page PDF → 3 pages out of cups-pdf -------------------------------------
        three = inputs / "trois-pages.pdf"
        three.write_bytes(pdf_of(3))
        await print_file(rig, three)
        await page.wait_for_function(
            "() => Object.values(window.guichetAgent.documents.state.jobs)"
            ".some((s) => s.includes('done'))",
            timeout=WAIT_MS,
        )
        await expect(page.locator("#doc-status")).to_contain_text("Imprimé")
        jobs = (await documents_state(rig))["jobs"]
        (job_id,) = [k for k, v in jobs.items() if "done" in v]
        out_dir = cups_queues.scheduler.pdf_output

        def outputs() -> list[Path]:
            if not out_dir.is_dir():
                return []
            return [p for p in out_dir.iterdir() if job_id in p.name]

        await wait_for(lambda: bool(outputs()), "cups-pdf output")
        (printed,) = outputs()
        await wait_for(lambda: printed.stat().st_size > 0, "cups-pdf output written")
        await asyncio.sleep(0.2)  # cups-pdf closes the file after its last write
        with pikepdf.open(printed) as out:
            assert len(out.pages) == 3
        printed.unlink()  # the paper, taken by the citizen
        assert "prenez-les" in str(rig.screen.info.get("document", ""))

        # --- the queue disabled: failure and reason --------------------------------------------
        connection = cups_queues.connection()
        await asyncio.to_thread(connection.disablePrinter, cups_queues.pdf, reason="test")
        try:
            one = inputs / "une-page.pdf"
            one.write_bytes(pdf_of(1))
            await print_file(rig, one)
            message = await wait_error(rig, 1)
            assert "L'imprimante est arrêtée" in message
        finally:
            await asyncio.to_thread(connection.enablePrinter, cups_queues.pdf)

        # --- bad input, each refused in French; the call goes on -------------------------------
        fake = inputs / "facture.pdf"
        fake.write_bytes(b"GIF89a" + os.urandom(20_000))
        await print_file(rig, fake)
        assert "n'est pas un PDF" in await wait_error(rig, 2)

        huge = inputs / "enorme.pdf"
        with huge.open("wb") as f:
            f.truncate(200 * 1024 * 1024)
        await print_file(rig, huge)
        assert "trop lourd (200 Mo)" in await wait_error(rig, 3)
        huge.unlink()

        locked = inputs / "protege.pdf"
        locked.write_bytes(pdf_of(1, encrypt=True))
        await print_file(rig, locked)
        assert "mot de passe" in await wait_error(rig, 4)

        many = inputs / "annuaire.pdf"
        many.write_bytes(pdf_of(5000))
        await print_file(rig, many)
        assert "5000 pages" in await wait_error(rig, 5)

        scanner.extra_options = fault("SANE_STATUS_JAMMED")
        try:
            await page.select_option("#scan-source", "adf")
            await page.get_by_role("button", name="Numériser").click()
            await rig.page.wait_for_function(
                "() => window.guichetAgent.documents.state.errors.length >= 6", timeout=WAIT_MS
            )
            errors = (await documents_state(rig))["errors"]
            assert "bourré" in errors[5]["message"]
        finally:
            scanner.extra_options = NO_FAULT
        assert rig.phase is Phase.IN_CALL
        stats = await rig.wait_browser_frames(frames_before + 2 * FRAMES)
        assert stats["framesDecoded"] > frames_before

        # --- the call ends: nothing is left ------------------------------------------------------
        scheduler = cups_queues.scheduler
        spools = [scheduler.spool, scheduler.cups_pdf_spool, scheduler.pdf_output]
        await page.get_by_role("button", name="Raccrocher").click()
        await rig.wait_idle()
        await wait_for(
            lambda: not any(p.is_file() for p in private_dir.rglob("*")), "private dir wiped"
        )
        for path in inputs.iterdir():  # the agent's own files and download
            path.unlink()
        roots = [
            rig.appliance.config.device.data_dir,
            private_dir,
            Path(tempfile.gettempdir()),
            Path("/dev/shm"),
            *([Path(os.environ["XDG_RUNTIME_DIR"])] if "XDG_RUNTIME_DIR" in os.environ else []),
            *spools,
        ]
        with contextlib.suppress(TimeoutError):  # the assertion below names what is left
            await wait_for(
                lambda: not document_files(roots, spools, started), "no document on disk", 10
            )
        assert document_files(roots, spools, started) == []
