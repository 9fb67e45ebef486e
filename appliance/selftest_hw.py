"""What the self-test does to the hardware beyond the ports' ``state()``: a CUPS test page,
a SANE test scan, an ALSA tone and recording, the screen's connector, a TCP probe.

The ports only report presence and health (the documents issue adds printing and scanning
to them); the technician's self-test needs one real page and one real scan now, so these
functions are the adapters for that. Each blocking library call runs in a worker thread;
each external tool runs as an asyncio subprocess. Every failure becomes a
``SelfTestError`` whose message is French, for the technician.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import time
from datetime import datetime
from pathlib import Path

from appliance.hw.sane import scanner as sane_scanner

logger = logging.getLogger(__name__)

PRINT_TIMEOUT_S = 120.0  # a real USB printer warms up; cups-pdf takes ~0.3 s
JOB_POLL_S = 0.2
JOB_COMPLETED, JOB_STOPPED, JOB_CANCELED, JOB_ABORTED = 9, 6, 7, 8  # RFC 8011 job-state
IPP_NOT_FOUND = 0x0406  # client-error-not-found
PRINTER_STOPPED = 5  # RFC 8011 printer-state: a queue CUPS stopped after a backend failure
SCAN_DPI = 75
# A small grey area (50 mm square) at low resolution: the scan takes seconds, not minutes.
SCAN_OPTIONS = (("mode", "Gray"), ("resolution", SCAN_DPI), ("br_x", 50.0), ("br_y", 50.0))
TONE_HZ, TONE_S, RATE = 440, 1.0, 48_000
RECORD_S = 1
DRM_DIR = Path("/sys/class/drm")


class SelfTestError(Exception):
    """A check failed; the message says what happened, in French."""


# --- printer ---------------------------------------------------------------------------------


def test_page_text(device_id: str) -> str:
    now = datetime.now().astimezone()
    return (
        "Guichet Proche - page de test\n\n"
        f"Guichet : {device_id}\n"
        f"Imprimée le {now:%d/%m/%Y à %H:%M}\n\n"
        "Si vous lisez cette page, l'imprimante du guichet fonctionne.\n"
    )


def print_test_page(
    queue: str | None,
    text: str,
    *,
    server: str | None = None,
    timeout_s: float = PRINT_TIMEOUT_S,
) -> str:
    """Blocking: print ``text`` on ``queue`` (or the default) of ``server`` (a host or a Unix
    socket; ``None``: libcups' default) and wait for the job to finish."""
    try:
        import cups
    except ImportError:
        raise SelfTestError("le module d'impression (pycups) n'est pas installé") from None
    try:
        connection = cups.Connection() if server is None else cups.Connection(host=server)
    except RuntimeError:
        raise SelfTestError("le service d'impression (CUPS) ne répond pas") from None
    name = queue or connection.getDefault()
    if not name:
        raise SelfTestError("aucune imprimante n'est configurée")
    path = Path(f"/tmp/guichet-page-test-{time.monotonic_ns()}.txt")  # noqa: S108 - PrivateTmp
    path.write_text(text, encoding="utf-8")
    try:
        job = connection.printFile(name, str(path), "Guichet Proche - page de test", {})
        return _wait_job(connection, name, job, timeout_s)
    except cups.IPPError as exc:
        raise SelfTestError(f"CUPS a refusé la page : {exc.args[-1]}") from None
    finally:
        path.unlink(missing_ok=True)


def _wait_job(connection: object, queue: str, job: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    import cups

    while time.monotonic() < deadline:
        try:
            state = connection.getJobAttributes(job)["job-state"]  # type: ignore[attr-defined]
        except cups.IPPError as exc:
            # Counters keep no job history (PreserveJobHistory No): a finished job is
            # forgotten at once, and "not found" means it ended; the printer says how.
            if not exc.args or exc.args[0] != IPP_NOT_FOUND:
                raise
            stopped = connection.getPrinterAttributes(queue).get("printer-state")  # type: ignore[attr-defined]
            state = JOB_ABORTED if stopped == PRINTER_STOPPED else JOB_COMPLETED
        if state == JOB_COMPLETED:
            return f"page de test imprimée sur « {queue} »"
        attrs = connection.getPrinterAttributes(queue)  # type: ignore[attr-defined]
        if state in (JOB_CANCELED, JOB_ABORTED, JOB_STOPPED) or (
            attrs.get("printer-state") == PRINTER_STOPPED
        ):
            message = attrs.get("printer-state-message") or "travail annulé"
            connection.cancelJob(job)  # type: ignore[attr-defined]
            raise SelfTestError(f"l'impression a échoué : {message}")
        time.sleep(JOB_POLL_S)
    connection.cancelJob(job)  # type: ignore[attr-defined]
    raise SelfTestError(f"la page n'est pas sortie en {timeout_s:.0f} s")


# --- scanner ---------------------------------------------------------------------------------


def scan_test(device: str | None) -> str:
    """Blocking: scan a small grey area and return what came out."""
    try:
        devices = sane_scanner.list_sane_devices()  # initialises libsane once per process
        import sane
    except sane_scanner.SaneUnavailableError:
        raise SelfTestError("le module de numérisation (python-sane) n'est pas installé") from None
    name = device or (devices[0].name if devices else None)
    if name is None:
        raise SelfTestError("aucun scanner n'est visible")
    try:
        scanner = sane.open(name)
    except Exception as exc:  # _sane.error: busy, unplugged, permission
        raise SelfTestError(f"le scanner ne s'ouvre pas : {exc}") from None
    try:
        for option, value in SCAN_OPTIONS:
            _set_option(scanner, option, value)
        scanner.start()
        pixels = scanner.arr_snap()  # numpy (python3-numpy), not PIL: not on the counter
    except Exception as exc:
        raise SelfTestError(f"la numérisation a échoué : {exc}") from None
    finally:
        scanner.close()
    width, height = pixels.shape[0], pixels.shape[1]
    return f"numérisation de test réussie ({width}×{height} points, « {name} »)"


def _set_option(scanner: object, option: str, value: object) -> None:
    """Set one SANE option if this scanner has it (not every scanner has every option)."""
    try:
        setattr(scanner, option, value)
    except Exception as exc:  # _sane.error, AttributeError: option absent or read-only
        logger.debug("scanner option %s not set: %s", option, exc)


# --- audio, screen, network ------------------------------------------------------------------


def tone_wav(frequency: int = TONE_HZ, seconds: float = TONE_S, rate: int = RATE) -> bytes:
    """A mono 16-bit WAV sine tone, made here (no file shipped)."""
    count = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(12_000 * math.sin(2 * math.pi * frequency * i / rate)))
        for i in range(count)
    )
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(samples),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(samples),
    )
    return header + samples


async def _tool(argv: list[str], stdin: bytes | None = None, timeout_s: float = 15.0) -> bytes:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise SelfTestError(f"l'outil « {argv[0]} » n'est pas installé") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise SelfTestError(f"« {argv[0]} » ne répond pas") from None
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise SelfTestError(reason[-1] if reason else f"« {argv[0]} » a échoué")
    return out


async def play_tone() -> str:
    await _tool(["aplay", "-q", "-"], stdin=tone_wav())
    return f"un bip de {TONE_S:g} s a été joué"


async def record_level() -> float:
    """Record one second from the default capture device; return its RMS level (0-1)."""
    raw = await _tool(
        [
            "arecord",
            "-q",
            "-d",
            str(RECORD_S),
            "-f",
            "S16_LE",
            "-r",
            str(RATE),
            "-c",
            "1",
            "-t",
            "raw",
        ],
    )
    if len(raw) < 2:
        raise SelfTestError("aucun son n'a été enregistré")
    count = len(raw) // 2
    values = struct.unpack(f"<{count}h", raw[: count * 2])
    return math.sqrt(sum(v * v for v in values) / count) / 32768


def connected_screens(drm_dir: Path = DRM_DIR) -> list[str]:
    """Names of the display connectors that see a screen (``card0-HDMI-A-1``)."""
    found = []
    for status in sorted(drm_dir.glob("card*-*/status")):
        try:
            if status.read_text().strip() == "connected":
                found.append(status.parent.name)
        except OSError:
            continue
    return found


async def reach(host: str, port: int, *, timeout_s: float = 10.0) -> float:
    """Open (and close) a TCP connection; return the time it took in seconds."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except socket.gaierror:
        raise SelfTestError(f"le nom « {host} » est inconnu (DNS)") from None
    except ConnectionRefusedError:
        raise SelfTestError(f"{host} répond mais refuse le port {port}") from None
    except TimeoutError:
        raise SelfTestError(f"{host}:{port} ne répond pas en {timeout_s:g} s") from None
    except OSError as exc:
        raise SelfTestError(f"{host}:{port} injoignable ({exc.strerror})") from None
    writer.close()
    await writer.wait_closed()
    return time.monotonic() - started
