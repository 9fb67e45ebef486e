"""PDFs in memory: scanned pages assembled into one small PDF, and a PDF to print checked.

Blocking (Pillow, img2pdf, pikepdf): call through ``asyncio.to_thread``. Nothing here
touches the disk or logs anything about a document.

Assembly is sized for a rural link (≤ 150 KB for an A4 page in grey at 300 dpi): the paper's
near-white grain is cleaned to white and its specks removed — what a scan's background costs
most; a grey page is then the smaller of a 16-level PNG (text) and a JPEG (photos); colour is
JPEG; black and white is CCITT Group 4, the fax codec. img2pdf embeds each stream as is.
The PDF page is the scanned area at its resolution, so each page's pixels are the scanner's.
"""

from __future__ import annotations

import base64
import io
import zlib
from dataclasses import dataclass
from typing import Any

from appliance.errors import DocumentError
from appliance.hw.ports import ScannedPage

JPEG_QUALITY = 55  # photos and colour pages: legible, and ~4× smaller than quality 90
PAPER_WHITE = 200  # grey levels at or above this are the paper's grain: made pure white
GREY_LEVELS = 16  # text in 16 greys keeps its anti-aliasing; a dense A4 page ~145 KB as PNG
DESPECKLE_MIN_DPI = 200  # a 3×3 median removes the paper's specks; at 150 dpi it would thin text
THUMBNAIL_PX = (160, 226)  # A4 proportions; ~4 KB as JPEG
THUMBNAIL_QUALITY = 60
MB = 1024 * 1024
# A PDF to print may not decompress to more than this, all streams together: a 2 MB file can
# hold a content stream that inflates to gigabytes (a "zip bomb" for CUPS and the counter).
MAX_INFLATED_BYTES = 256 * MB
MAX_OBJECTS = 200_000  # objects looked at: bounds the check's own work
INFLATE_CHUNK = MB  # zlib output per step, so no step holds more than this
FLATE = frozenset({"/FlateDecode", "/Fl"})
# Filters whose output is bounded by a ratio of their input (RunLength ≤ 128×, LZW ≤ ~3,000×):
# decoded only if even that worst case fits what is left.
EXPANDING = {"/RunLengthDecode": 128, "/RL": 128, "/LZWDecode": 3_000, "/LZW": 3_000}


_STEP = 256 // GREY_LEVELS
_PAPER_LUT = [255 if v >= PAPER_WHITE else v for v in range(256)]
_GREY_LEVELS_LUT = [
    255 if v >= PAPER_WHITE else min(255, (v // _STEP) * _STEP + _STEP // 2) for v in range(256)
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 20 * MB
    max_pages: int = 50


@dataclass(frozen=True, slots=True)
class AssembledPdf:
    data: bytes
    page_bytes: list[int]  # each page's encoded image, bytes


@dataclass(frozen=True, slots=True)
class CheckedPdf:
    pages: int


# zlib's level 8, not 9: a dense grey A4 text page at 300 dpi is 144 KB instead of 140 KB
# (the budget is 150) in 0.18 s instead of 0.43-0.77 s here, about 3× that on a Pi 4's
# core — time the citizen and the agent wait on a rural line (bench/documents.py --shaped).
# A 4-bit palette PNG of the same 16 greys compresses worse (166 KB at level 6).
PNG_LEVEL = 8


def encode_page(page: ScannedPage) -> bytes:
    """One page as the image stream the PDF will carry: CCITT G4 TIFF (black and white),
    the smaller of a 16-level PNG and a JPEG (grey: text favours the PNG, photos the
    JPEG), or a JPEG (colour). img2pdf embeds each as is."""
    from PIL import Image, ImageFilter

    image = Image.frombytes(page.mode, (page.width, page.height), page.pixels)
    if page.mode == "1":
        out = io.BytesIO()
        image.save(out, format="TIFF", compression="group4", dpi=(page.dpi, page.dpi))
        return out.getvalue()
    if page.mode == "L":
        image = image.point(_PAPER_LUT)
        if page.dpi >= DESPECKLE_MIN_DPI:
            image = image.filter(ImageFilter.MedianFilter(3))
        png = _save(image.point(_GREY_LEVELS_LUT), "PNG", page.dpi, compress_level=PNG_LEVEL)
        jpeg = _save(image, "JPEG", page.dpi, quality=JPEG_QUALITY, optimize=True)
        return png if len(png) <= len(jpeg) else jpeg
    image = Image.eval(image.convert("RGB"), lambda v: 255 if v >= PAPER_WHITE else v)
    return _save(image, "JPEG", page.dpi, quality=JPEG_QUALITY, optimize=True)


def _save(image: Any, format: str, dpi: int, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, dpi=(dpi, dpi), **options)
    return out.getvalue()


def thumbnail(page: ScannedPage) -> str:
    """A small JPEG of the page, base64, for the agent's page strip."""
    from PIL import Image

    image = Image.frombytes(page.mode, (page.width, page.height), page.pixels)
    image = image.convert("L" if page.mode in ("1", "L") else "RGB")
    image.thumbnail(THUMBNAIL_PX)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return base64.b64encode(out.getvalue()).decode("ascii")


def assemble(encoded_pages: list[bytes]) -> bytes:
    """One PDF of the pages (from ``encode_page``), each page the size of its scan."""
    import img2pdf

    if not encoded_pages:
        raise DocumentError("scanner_no_document", "Aucune page n'a été numérisée.")
    pdf: bytes = img2pdf.convert(encoded_pages)
    return pdf


def megabytes(size: int) -> str:
    """``209715200`` → ``"200 Mo"``; ``1572864`` → ``"1,5 Mo"`` (French decimals)."""
    value = size / MB
    text = f"{value:.0f}" if value >= 10 or value.is_integer() else f"{value:.1f}"
    return text.replace(".", ",") + " Mo"


def check_announced_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise DocumentError(
            "too_large",
            f"Le fichier est trop lourd ({megabytes(size)}) : "
            f"le guichet imprime jusqu'à {megabytes(limits.max_bytes)}.",
        )


def check_pdf(data: bytes, limits: Limits) -> CheckedPdf:
    """Refuse what is not a clean, unencrypted PDF within the limits (``DocumentError``)."""
    import pikepdf

    check_announced_size(len(data), limits)
    if not data.startswith(b"%PDF-"):
        raise DocumentError("not_pdf", "Ce fichier n'est pas un PDF : seuls les PDF s'impriment.")
    try:
        with pikepdf.open(io.BytesIO(data), attempt_recovery=False) as pdf:
            if pdf.is_encrypted:
                raise DocumentError("encrypted", _ENCRYPTED)
            pages = len(pdf.pages)
            if pages > limits.max_pages:
                raise DocumentError(
                    "too_many_pages",
                    f"Le document a {pages} pages : le guichet en imprime "
                    f"{limits.max_pages} au plus.",
                )
            if pages == 0:
                raise DocumentError("damaged", _DAMAGED)
            for page in pdf.pages:  # each page must at least have its dictionary in order
                _ = page.mediabox
            _check_inflated(pdf)
    except pikepdf.PasswordError:
        raise DocumentError("encrypted", _ENCRYPTED) from None
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, RuntimeError, zlib.error):
        raise DocumentError("damaged", _DAMAGED) from None
    return CheckedPdf(pages=pages)


def _check_inflated(pdf: Any) -> None:
    """Refuse a PDF whose streams decompress to more than ``MAX_INFLATED_BYTES`` in all,
    without ever holding more than ``INFLATE_CHUNK`` of one decompressed."""
    import pikepdf

    total = 0
    for index, obj in enumerate(pdf.objects):
        if index >= MAX_OBJECTS:
            raise DocumentError("damaged", _DAMAGED)
        if not isinstance(obj, pikepdf.Stream):
            continue
        filters = obj.get("/Filter")
        names = [str(f) for f in (filters if isinstance(filters, pikepdf.Array) else [filters])]
        first = names[0] if filters is not None else None
        raw = obj.read_raw_bytes()
        budget = MAX_INFLATED_BYTES - total
        if first in FLATE:
            total += _inflated_size(raw, budget)
        elif first in EXPANDING:
            worst = len(raw) * EXPANDING[first]
            total += worst if worst > budget else len(obj.read_bytes())
        else:  # unfiltered, or an image codec the printer decodes (its pixels: see mediabox)
            total += len(raw)
        if total > MAX_INFLATED_BYTES:
            raise DocumentError(
                "too_large",
                "Ce PDF est trop lourd une fois décompressé : le guichet imprime jusqu'à "
                f"{megabytes(MAX_INFLATED_BYTES)} de contenu.",
            )


def _inflated_size(raw: bytes, budget: int) -> int:
    """Bytes ``raw`` inflates to, counted chunk by chunk; stops once past ``budget``."""
    inflater = zlib.decompressobj()
    size, pending = 0, raw
    while True:
        chunk = inflater.decompress(pending, INFLATE_CHUNK)
        size += len(chunk)
        pending = inflater.unconsumed_tail
        if size > budget or inflater.eof or not (chunk or pending):
            return size


_ENCRYPTED = "Ce PDF est protégé par un mot de passe : enregistrez-le sans protection."
_DAMAGED = "Ce PDF est endommagé et ne peut pas être imprimé."
