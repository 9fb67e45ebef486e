"""The self-test's probes that no port covers: an ALSA tone and recording (``aplay``,
``arecord``), the screen's connector (``/sys/class/drm``) and a TCP probe of the broker.

No hardware library here: the test page and the test scan go through the printer and
scanner ports (``appliance.selftest``). Each external tool runs as an asyncio subprocess.
Every failure becomes a ``SelfTestError`` whose message is French, for the technician.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import time
from pathlib import Path

from appliance.errors import SelfTestError
from appliance.hw.tools import run_tool

logger = logging.getLogger(__name__)

TONE_HZ, TONE_S, RATE = 440, 1.0, 48_000
RECORD_S = 1
DRM_DIR = Path("/sys/class/drm")


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
        run = await run_tool(argv, timeout_s=timeout_s, stdin=stdin)
    except FileNotFoundError:
        raise SelfTestError(f"l'outil « {argv[0]} » n'est pas installé") from None
    except TimeoutError:
        raise SelfTestError(f"« {argv[0]} » ne répond pas") from None
    if not run.ok:
        raise SelfTestError(run.reason(last=True) or f"« {argv[0]} » a échoué")
    return run.stdout


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
