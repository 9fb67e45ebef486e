"""Scanning through python-sane (blocking: run in a worker thread, under the SANE lock).

Options are chosen from what the device offers: its mode names ("Gray", "Color",
"Lineart"/"Binary"…), its source names ("Flatbed", "ADF", "Automatic Document Feeder"…)
and its scan area, clamped to A4. A device without a black-and-white mode scans in grey and
the page is thresholded here. SANE's status strings (the errors python-sane raises) become
``DocumentError``s with a French message for the agent (``appliance.hw.ports.scanner.translate``,
which the fake scanner shares).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from appliance.errors import DocumentError
from appliance.hw.ports import ScannedPage, ScanSettings
from appliance.hw.ports.scanner import EMPTY_FEEDER, translate

logger = logging.getLogger(__name__)

A4_MM = (210.0, 297.0)
LINEART_THRESHOLD = 160  # grey below this is ink when the scanner has no lineart mode
MODE_NAMES = {
    "color": ("color", "colour", "24bit color"),
    "gray": ("gray", "grey", "grayscale", "8bit gray"),
    "lineart": ("lineart", "binary", "black & white", "halftone"),
}
FEEDER = re.compile(r"adf|feeder|automatic", re.IGNORECASE)


def _choose(values: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {v.lower(): v for v in values}
    return next((lowered[w] for w in wanted if w in lowered), None)


def has_feeder(device: Any) -> bool:
    sources = _constraint(device, "source")
    return any(FEEDER.search(s) for s in sources)


def _constraint(device: Any, name: str) -> list[str]:
    option = device.opt.get(name)
    if option is None or not isinstance(option.constraint, list):
        return []
    return [str(v) for v in option.constraint]


def configure(device: Any, settings: ScanSettings, extra: Mapping[str, object]) -> bool:
    """Set mode, resolution, source and area; returns whether to threshold in software."""
    modes = _constraint(device, "mode")
    threshold = False
    mode = _choose(modes, MODE_NAMES[settings.mode])
    if mode is None and settings.mode == "lineart":
        mode, threshold = _choose(modes, MODE_NAMES["gray"]), True
    if mode is None:
        raise DocumentError("scanner_failed", "Le scanner ne propose pas ce mode.")
    device.mode = mode
    device.resolution = settings.resolution
    sources = _constraint(device, "source")
    if settings.source == "adf":
        feeder = next((s for s in sources if FEEDER.search(s)), None)
        if feeder is None:
            raise DocumentError("scanner_failed", "Ce scanner n'a pas de chargeur de documents.")
        device.source = feeder
    elif sources:
        device.source = next((s for s in sources if not FEEDER.search(s)), sources[0])
    area = settings.area_mm or A4_MM
    for axis, limit in (("br_x", min(area[0], A4_MM[0])), ("br_y", min(area[1], A4_MM[1]))):
        option = device.opt.get(axis)
        if option is not None and isinstance(option.constraint, tuple):
            setattr(device, axis, min(float(option.constraint[1]), limit))
    for name, value in extra.items():
        setattr(device, name, value)
    return threshold


def to_page(image: Any, settings: ScanSettings, threshold: bool) -> ScannedPage:
    """A PIL image from python-sane as a port-level page."""
    if settings.mode == "lineart":
        if threshold or image.mode != "1":
            image = image.convert("L").point(lambda v: 255 if v >= LINEART_THRESHOLD else 0)
        image = image.convert("1")
    elif settings.mode == "gray":
        image = image.convert("L")
    else:
        image = image.convert("RGB")
    width, height = image.size
    return ScannedPage(width, height, image.mode, settings.resolution, image.tobytes())


def scan_pages(
    device_name: str,
    settings: ScanSettings,
    extra: Mapping[str, object],
    on_page: Callable[[ScannedPage], None],
) -> list[ScannedPage]:
    """Blocking: open the device, scan, close it. Raises ``DocumentError``."""
    import sane

    try:
        device = sane.open(device_name)
    except Exception as exc:  # _sane.error, RuntimeError: device gone or busy
        raise DocumentError(
            "scanner_unavailable", "Le scanner ne répond pas : est-il branché et allumé ?"
        ) from exc
    pages: list[ScannedPage] = []
    try:
        threshold = configure(device, settings, extra)
        images: Iterator[Any] = (
            iter(device.multi_scan()) if settings.source == "adf" else iter([device.scan()])
        )
        for image in images:
            page = to_page(image, settings, threshold)
            pages.append(page)
            on_page(page)
    except DocumentError:
        raise
    except Exception as exc:
        logger.warning("scan failed: %s", exc)  # SANE's status text; no document content
        raise translate(exc) from exc
    finally:
        device.close()
    if not pages:
        raise DocumentError("scanner_no_document", EMPTY_FEEDER)
    return pages
