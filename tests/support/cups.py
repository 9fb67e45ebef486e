"""A private CUPS scheduler and its queues for the printer tests.

The suite never touches the machine's own CUPS (``/etc/cups``, ``/usr/lib/cups/backend``,
``/var/spool/cups``, root's ``~/PDF``): one ``cupsd`` per test session runs from a
temporary directory with its own ``cupsd.conf`` and ``cups-files.conf`` (the privacy
settings a counter has written there as plain text), listens only on a Unix socket in that
directory (which crosses network namespaces) and is stopped at the end of the session.

- Its ``ServerBin`` is a directory of links to the system's filters and backends, plus a
  failing backend that, as a broken USB printer would, reports the printer offline and exits
  with CUPS_BACKEND_STOP — CUPS then stops the queue (printer-state 5, reason ``paused``,
  message = the backend's ERROR text).
- cups-pdf reads its configuration from a path compiled in (``/etc/cups/cups-pdf.conf``):
  the scheduler runs in a private mount namespace where a private ``cups-pdf.conf`` is
  bind-mounted over it, so the PDFs land in the temporary directory.

Tests reach it through ``CupsQueues.server`` (pycups' ``host``, the counter's
``printer_server``); ``CUPS_SERVER`` is set too, for anything that follows libcups' default.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import stop_process

CUPSD = "/usr/sbin/cupsd"
LPADMIN = shutil.which("lpadmin") or "/usr/sbin/lpadmin"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
CUPS_PDF_PPD = "lsb/usr/cups-pdf/CUPS-PDF_noopt.ppd"
SYSTEM_SERVER_BIN = Path("/usr/lib/cups")
SYSTEM_CUPS_PDF_CONF = Path("/etc/cups/cups-pdf.conf")
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

# What a counter's cupsd.conf says about citizens' documents (docs/decisions.md), plus what a
# private scheduler needs: a socket of its own, no network, root allowed to administer.
CUPSD_CONF = """# Guichet Proche test scheduler (tests/support/cups.py)
PreserveJobFiles No
PreserveJobHistory No
LogLevel warn
Listen {socket}
Browsing No
WebInterface No
DefaultAuthType Basic
<Location />
  Order allow,deny
  Allow localhost
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

CUPS_FILES_CONF = """# Guichet Proche test scheduler (tests/support/cups.py)
SystemGroup root
User lp
Group lp
ServerRoot {root}/etc
ServerBin {root}/lib
StateDir {root}/state
CacheDir {root}/cache
RequestRoot {root}/spool
TempDir {root}/spool/tmp
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
"""

CUPS_PDF_CONF = """# Guichet Proche test scheduler: cups-pdf writes into the session's directory
Out {root}/pdf
Spool {root}/cups-pdf-spool
AnonDirName {root}/pdf
Log {root}/log
LogType 1
"""


@dataclass(frozen=True)
class PrivateCups:
    """A running private scheduler and where it keeps things."""

    root: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return str(self.root / "cups.sock")

    @property
    def spool(self) -> Path:
        """The scheduler's RequestRoot: job files (``d*``) would stay here if kept."""
        return self.root / "spool"

    @property
    def pdf_output(self) -> Path:
        """Where cups-pdf writes the printed PDFs."""
        return self.root / "pdf"

    @property
    def cups_pdf_spool(self) -> Path:
        return self.root / "cups-pdf-spool"

    @property
    def error_log(self) -> Path:
        return self.root / "log" / "error_log"

    def running(self) -> bool:
        return self.process.poll() is None and Path(self.socket).exists()

    def stop(self) -> None:
        stop_process(self.process, START_TIMEOUT_S)


def _server_bin(root: Path) -> Path:
    """Links to the system's filters and backends, plus the failing backend."""
    lib = root / "lib"
    lib.mkdir()
    for entry in SYSTEM_SERVER_BIN.iterdir():
        if entry.name != "backend":
            (lib / entry.name).symlink_to(entry)
    backends = lib / "backend"
    backends.mkdir()
    for backend in (SYSTEM_SERVER_BIN / "backend").iterdir():
        (backends / backend.name).symlink_to(backend)
    failing = backends / FAILING_BACKEND
    failing.write_text(FAILING_BACKEND_SCRIPT)
    failing.chmod(0o700)  # 0700: cupsd runs it as root, as it does the usb backend
    return lib


def write_private_config(root: Path) -> tuple[Path, Path, Path]:
    """Write the scheduler's files under ``root``; returns (cupsd.conf, cups-files.conf,
    cups-pdf.conf)."""
    for sub in ("etc", "state", "cache", "spool", "spool/tmp", "log", "pdf", "cups-pdf-spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "ppd").mkdir(exist_ok=True)
    _server_bin(root)
    cupsd_conf = root / "etc" / "cupsd.conf"
    cupsd_conf.write_text(CUPSD_CONF.format(socket=root / "cups.sock"))
    files_conf = root / "etc" / "cups-files.conf"
    files_conf.write_text(CUPS_FILES_CONF.format(root=root))
    pdf_conf = root / "etc" / "cups-pdf.conf"
    pdf_conf.write_text(CUPS_PDF_CONF.format(root=root))
    return cupsd_conf, files_conf, pdf_conf


def check_config(cupsd_conf: Path, files_conf: Path) -> subprocess.CompletedProcess[str]:
    """``cupsd -t``: does this scheduler accept these files?"""
    return subprocess.run(
        [CUPSD, "-t", "-c", str(cupsd_conf), "-s", str(files_conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def start_private_scheduler() -> PrivateCups:
    """Start ``cupsd -f`` on a fresh temporary directory and wait for its socket."""
    # Not under pytest's basetemp (0700): filters run as user lp and must reach the spool.
    root = Path(tempfile.mkdtemp(prefix="guichet-cups-"))
    root.chmod(0o755)
    cupsd_conf, files_conf, pdf_conf = write_private_config(root)
    checked = check_config(cupsd_conf, files_conf)
    if checked.returncode != 0:
        raise RuntimeError(f"cupsd -t refused the test configuration: {checked.stderr.strip()}")
    # A private mount namespace: cups-pdf's compiled-in config path shows the private file.
    script = (
        f'mount --bind "{pdf_conf}" "{SYSTEM_CUPS_PDF_CONF}" && '
        f'exec "{CUPSD}" -f -c "{cupsd_conf}" -s "{files_conf}"'
    )
    with (root / "log" / "cupsd.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    scheduler = PrivateCups(root, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(scheduler.socket):
        if process.poll() is not None or time.monotonic() > deadline:
            scheduler.stop()
            log = (root / "log" / "cupsd.stderr").read_text(errors="replace")
            raise TimeoutError(f"private cupsd did not start: {log.strip()}")
        time.sleep(POLL_S)
    return scheduler


def _answers(socket_path: str) -> bool:
    if not Path(socket_path).exists():
        return False
    done = subprocess.run(
        ["lpstat", "-h", socket_path, "-r"], capture_output=True, text=True, check=False
    )
    return "scheduler is running" in done.stdout


def cups_available() -> str | None:
    """Why CUPS tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (cupsd runs backends as root, a private mount namespace)"
    if not Path(CUPSD).exists() or not (SYSTEM_SERVER_BIN / "backend").is_dir():
        return "CUPS is not installed"
    if not (SYSTEM_SERVER_BIN / "backend" / "cups-pdf").exists():
        return "printer-driver-cups-pdf is not installed"
    if not SYSTEM_CUPS_PDF_CONF.exists():
        return f"{SYSTEM_CUPS_PDF_CONF} is missing (printer-driver-cups-pdf)"
    return None


@dataclass(frozen=True)
class CupsQueues:
    pdf: str  # a cups-pdf virtual printer
    failing: str  # stops with "paused" + FAULT_MESSAGE on its first job
    scheduler: PrivateCups

    @property
    def server(self) -> str:
        """The scheduler's socket: pycups' ``host``, the counter's ``printer_server``."""
        return self.scheduler.socket

    def connection(self) -> Any:
        import cups

        return cups.Connection(host=self.server)


def lpadmin(server: str, *args: str) -> None:
    subprocess.run([LPADMIN, "-h", server, *args], check=True, capture_output=True)


@pytest.fixture(scope="session", name="cups_scheduler")
def cups_scheduler_fixture() -> Iterator[PrivateCups]:
    """Import ``cups_scheduler_fixture`` (or ``cups_queues_fixture``) into a test module."""
    reason = cups_available()
    if reason:  # ./run test installs CUPS and runs as root: a missing piece is a set-up bug
        pytest.fail(f"CUPS tests cannot run: {reason}")
    scheduler = start_private_scheduler()
    previous = os.environ.get("CUPS_SERVER")
    os.environ["CUPS_SERVER"] = scheduler.socket
    try:
        yield scheduler
    finally:
        if previous is None:
            os.environ.pop("CUPS_SERVER", None)
        else:
            os.environ["CUPS_SERVER"] = previous
        scheduler.stop()
        shutil.rmtree(scheduler.root, ignore_errors=True)


@pytest.fixture(scope="session", name="cups_queues")
def cups_queues_fixture(cups_scheduler: PrivateCups) -> CupsQueues:
    """Import ``cups_queues_fixture`` and ``cups_scheduler_fixture`` into a test module;
    request it as ``cups_queues``."""
    tag = uuid.uuid4().hex[:8]
    queues = CupsQueues(
        pdf=f"guichet-pdf-{tag}", failing=f"guichet-fail-{tag}", scheduler=cups_scheduler
    )
    lpadmin(queues.server, "-p", queues.pdf, "-v", "cups-pdf:/", "-E", "-m", CUPS_PDF_PPD)
    lpadmin(queues.server, "-p", queues.failing, "-v", f"{FAILING_BACKEND}:/", "-E", "-m", "raw")
    return queues


def _printer_state(queues: CupsQueues, queue: str) -> int:
    attributes = queues.connection().getPrinterAttributes(
        queue, requested_attributes=["printer-state"]
    )
    return int(attributes["printer-state"])


async def break_queue(queues: CupsQueues, document: Path) -> None:
    """Send a job to the failing queue and wait until CUPS has stopped it."""
    document.write_text("test page\n")
    await asyncio.to_thread(
        queues.connection().printFile, queues.failing, str(document), "fault", {}
    )
    deadline = time.monotonic() + FAULT_TIMEOUT_S
    while await asyncio.to_thread(_printer_state, queues, queues.failing) != 5:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queues.failing} did not stop within {FAULT_TIMEOUT_S} s")
        await asyncio.sleep(POLL_S)


async def repair_queue(queues: CupsQueues, queue: str) -> None:
    """Purge the queue's jobs and re-enable it (what ``cupsenable`` does)."""

    def repair() -> None:
        connection = queues.connection()
        connection.cancelAllJobs(name=queue, purge_jobs=True)
        connection.enablePrinter(queue)

    await asyncio.to_thread(repair)
