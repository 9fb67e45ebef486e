"""The scanner: health (``Scanner``), scanning for the agent (``DocumentScanner``), its faults
as SANE words them, in French (``translate``), and the fake, which scans blank A4 pages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from appliance.errors import DocumentError
from guichet.contract import DeviceHealth, ScannerState
from guichet.documents import ErrorCode


@runtime_checkable
class Scanner(Protocol):
    async def state(self) -> ScannerState: ...


@dataclass(frozen=True, slots=True)
class ScanSettings:
    resolution: int  # dpi: 150 or 300 for the agent, 75 for the self-test
    mode: str  # "color", "gray" or "lineart"
    source: str  # "flatbed" or "adf"
    area_mm: tuple[float, float] | None = None  # width, height from the corner; None: A4


@dataclass(frozen=True, slots=True)
class ScannedPage:
    """One page as the scanner gave it: raw pixels, row by row, no padding.

    ``mode`` is Pillow's: "RGB" (3 bytes a pixel), "L" (1 byte) or "1" (1 bit, rows padded
    to whole bytes, 1 = white, as Pillow packs it).
    """

    width: int
    height: int
    mode: str
    dpi: int
    pixels: bytes


@runtime_checkable
class DocumentScanner(Protocol):
    """Scanning for the agent. Raises ``DocumentError`` (jam, cover open, no document…)."""

    async def has_feeder(self) -> bool: ...
    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        """Scan one page (flatbed) or every page in the feeder; ``on_page`` runs on the loop
        after each page."""
        ...


# --- faults, as SANE words them, in French for the agent -----------------------------------

EMPTY_FEEDER = "Le chargeur est vide : demandez au citoyen d'y poser ses feuilles."
# SANE status strings (sane_strstatus) → what the agent reads.
SANE_ERRORS: list[tuple[str, ErrorCode, str]] = [
    ("jammed", "scanner_jammed", "Le chargeur du scanner est bourré : retirez la feuille coincée."),
    ("cover is open", "scanner_cover_open", "Le capot du scanner est ouvert : refermez-le."),
    ("out of documents", "scanner_no_document", EMPTY_FEEDER),
    ("busy", "scanner_unavailable", "Le scanner est occupé : réessayez dans un instant."),
    ("access", "scanner_unavailable", "Le scanner est inaccessible au guichet."),
    ("invalid argument", "scanner_failed", "Le scanner refuse ces réglages."),
]
GENERIC: tuple[ErrorCode, str] = ("scanner_failed", "Le scanner n'a pas pu numériser : réessayez.")


def translate(exc: BaseException) -> DocumentError:
    """A python-sane error (``_sane.error``, RuntimeError…) as the agent should read it.

    Pure, and here beside the port: the SANE adapter and the fake scanner both raise
    through it, so a fault reads the same on both.
    """
    text = str(exc).lower()
    for needle, code, message in SANE_ERRORS:
        if needle in text:
            return DocumentError(code, message)
    return DocumentError(*GENERIC)


SIMULATED_SCANNER = "simulated:0"  # its SANE device name
SIMULATED_SCANNER_MODEL = "Scanner simulé"  # shown on the counter's page: French


class SimulatedScanner:
    """The SANE device list, settable; ``device`` as in ``SaneScanner``."""

    def __init__(
        self, device: str | None = None, *, devices: Iterable[str] = (SIMULATED_SCANNER,)
    ) -> None:
        self._device = device
        self.devices = list(devices)
        self.feeder = True
        self.fault: str | None = None

    async def state(self) -> ScannerState:
        wanted = self._device
        found = (wanted in self.devices) if wanted else bool(self.devices)
        if not found:
            detail = f"introuvable : {wanted or 'aucun scanner'}"
            return ScannerState(health=DeviceHealth.ABSENT, detail=detail, devices=self.devices)
        return ScannerState(
            health=DeviceHealth.OK, model=SIMULATED_SCANNER_MODEL, devices=self.devices
        )

    # DocumentScanner: blank A4 pages with a dark band; ``fault`` is a SANE status text
    # ("Document feeder jammed"…) raised, translated, by the next scan.
    async def has_feeder(self) -> bool:
        return self.feeder

    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        if self.fault is not None:
            raise translate(RuntimeError(self.fault))
        pages = []
        for _ in range(SIMULATED_FEEDER_PAGES if settings.source == "adf" else 1):
            await asyncio.sleep(0)
            page = blank_page(settings)
            pages.append(page)
            on_page(page)
        return pages


SIMULATED_FEEDER_PAGES = 3


def blank_page(settings: ScanSettings) -> ScannedPage:
    """A white A4 page at ``settings``' resolution with a dark band where a title would be."""
    width, height = round(8.27 * settings.resolution), round(11.69 * settings.resolution)
    mode = {"color": "RGB", "gray": "L", "lineart": "1"}[settings.mode]
    if mode == "1":
        row_bytes = (width + 7) // 8
        white, ink = b"\xff" * row_bytes, b"\x00" * row_bytes
    else:
        depth = 3 if mode == "RGB" else 1
        white, ink = b"\xff" * (width * depth), b"\x20" * (width * depth)
    band = settings.resolution // 3
    rows = white * band + ink * band + white * (height - 2 * band)
    return ScannedPage(width, height, mode, settings.resolution, rows)
