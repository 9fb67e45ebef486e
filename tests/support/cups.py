"""A running CUPS scheduler and private queues for the printer tests.

The scheduler is started if it is not running (and left running, like the system service
it stands in for). Each test session creates its own uniquely named queues and deletes them
at the end, so concurrent sessions on one machine do not disturb each other:

- a cups-pdf queue (a real virtual printer: jobs complete and become PDF files);
- a queue on a failing backend that, as a broken USB printer would, reports the printer
  offline and exits with CUPS_BACKEND_STOP — CUPS then stops the queue (printer-state 5,
  reason ``paused``, message = the backend's ERROR text).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CUPSD = "/usr/sbin/cupsd"
LPSTAT = shutil.which("lpstat") or "/usr/bin/lpstat"
LPADMIN = shutil.which("lpadmin") or "/usr/sbin/lpadmin"
CUPS_PDF_PPD = "lsb/usr/cups-pdf/CUPS-PDF_noopt.ppd"
BACKEND_DIR = Path("/usr/lib/cups/backend")
FAILING_BACKEND = "guichet-test-fail"
FAULT_MESSAGE = "Guichet test printer is offline"
START_TIMEOUT_S = 10.0
FAULT_TIMEOUT_S = 10.0  # a job reaches the backend in ~0.1 s
POLL_S = 0.05

# sh, not Python: the backend runs as root under cupsd, outside the venv.
FAILING_BACKEND_SCRIPT = f"""#!/bin/sh
# Guichet Proche test backend: a printer that has gone offline.
[ $# -eq 0 ] && exit 0   # device discovery: nothing to list
cat > /dev/null
echo "STATE: +offline-report" >&2
echo "ERROR: {FAULT_MESSAGE}" >&2
exit 4                   # CUPS_BACKEND_STOP: stop the queue
"""


def scheduler_running() -> bool:
    done = subprocess.run([LPSTAT, "-r"], capture_output=True, text=True, check=False)
    return "scheduler is running" in done.stdout


def ensure_scheduler() -> None:
    if scheduler_running():
        return
    Path("/run/cups").mkdir(parents=True, exist_ok=True)
    subprocess.run([CUPSD], check=True)  # forks into the background
    deadline = time.monotonic() + START_TIMEOUT_S
    while not scheduler_running():
        if time.monotonic() > deadline:
            raise TimeoutError(f"cupsd not running after {START_TIMEOUT_S} s")
        time.sleep(POLL_S)


PRIVACY_SETTINGS = {"PreserveJobFiles": "No", "PreserveJobHistory": "No"}


def ensure_private_scheduler() -> None:
    """Make the scheduler keep neither job files nor job history, as a counter's does
    (``docs/decisions.md``). Written into cupsd.conf through CUPS's own admin request
    (``cupsAdminSetServerSettings``), which restarts cupsd; a no-op once set."""
    import cups

    connection = cups.Connection()
    current = connection.adminGetServerSettings()
    if all(current.get(k, "").lower() == v.lower() for k, v in PRIVACY_SETTINGS.items()):
        return
    connection.adminSetServerSettings({**current, **PRIVACY_SETTINGS})
    deadline = time.monotonic() + START_TIMEOUT_S
    time.sleep(POLL_S)
    while not scheduler_running():
        if time.monotonic() > deadline:
            raise TimeoutError(f"cupsd not back after {START_TIMEOUT_S} s")
        time.sleep(POLL_S)


def cups_pdf_output_dir() -> Path:
    """Where cups-pdf writes a root-owned job (``Out ${HOME}/PDF`` in cups-pdf.conf)."""
    return Path(os.path.expanduser("~root")) / "PDF"


def install_failing_backend() -> None:
    path = BACKEND_DIR / FAILING_BACKEND
    if not path.exists() or path.read_text() != FAILING_BACKEND_SCRIPT:
        path.write_text(FAILING_BACKEND_SCRIPT)
    path.chmod(0o700)  # 0700: cupsd runs it as root, as it does the usb backend


def lpadmin(*args: str) -> None:
    subprocess.run([LPADMIN, *args], check=True, capture_output=True)


@dataclass(frozen=True)
class CupsQueues:
    pdf: str  # a cups-pdf virtual printer
    failing: str  # stops with "paused" + FAULT_MESSAGE on its first job


def cups_available() -> str | None:
    """Why CUPS tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (cupsd, backends in /usr/lib/cups)"
    if not Path(CUPSD).exists() or not BACKEND_DIR.is_dir():
        return "CUPS is not installed"
    if not Path("/usr/lib/cups/backend/cups-pdf").exists():
        return "printer-driver-cups-pdf is not installed"
    return None


@pytest.fixture(scope="session", name="cups_queues")
def cups_queues_fixture() -> Iterator[CupsQueues]:
    """Import ``cups_queues_fixture`` into a test module; request it as ``cups_queues``."""
    reason = cups_available()
    if reason:  # ./run test installs CUPS and runs as root: a missing piece is a set-up bug
        pytest.fail(f"CUPS tests cannot run: {reason}")
    ensure_scheduler()
    install_failing_backend()
    tag = uuid.uuid4().hex[:8]
    queues = CupsQueues(pdf=f"guichet-pdf-{tag}", failing=f"guichet-fail-{tag}")
    lpadmin("-p", queues.pdf, "-v", "cups-pdf:/", "-E", "-m", CUPS_PDF_PPD)
    lpadmin("-p", queues.failing, "-v", f"{FAILING_BACKEND}:/", "-E", "-m", "raw")
    try:
        yield queues
    finally:
        for name in (queues.pdf, queues.failing):
            subprocess.run([LPADMIN, "-x", name], check=False, capture_output=True)


def _printer_state(queue: str) -> int:
    import cups

    attributes = cups.Connection().getPrinterAttributes(
        queue, requested_attributes=["printer-state"]
    )
    return int(attributes["printer-state"])


async def break_queue(queue: str, document: Path) -> None:
    """Send a job to the failing queue and wait until CUPS has stopped it."""
    import cups

    document.write_text("test page\n")
    await asyncio.to_thread(cups.Connection().printFile, queue, str(document), "fault", {})
    deadline = time.monotonic() + FAULT_TIMEOUT_S
    while await asyncio.to_thread(_printer_state, queue) != 5:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queue} did not stop within {FAULT_TIMEOUT_S} s")
        await asyncio.sleep(POLL_S)


async def repair_queue(queue: str) -> None:
    """Purge the queue's jobs and re-enable it (what ``cupsenable`` does)."""
    import cups

    def repair() -> None:
        connection = cups.Connection()
        connection.cancelAllJobs(name=queue, purge_jobs=True)
        connection.enablePrinter(queue)

    await asyncio.to_thread(repair)
