"""Documents in memory: PDF checks for printing, scans assembled into one small PDF.

The scans come from SANE's real ``test`` backend (a virtual scanner); the PDFs to check are
generated here. Each refusal carries the French message the agent reads.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import pikepdf
import pytest

from appliance.documents import pdf
from appliance.errors import DocumentError
from appliance.hw.ports import ScannedPage, ScanSettings
from appliance.hw.ports.scanner import translate
from appliance.hw.sane.scanner import SaneScanner
from tests.support.documents import pdf_of, scanned_text_page
from tests.support.sane import (
    NO_FAULT,
    fault,
    sane_test_backend_fixture,  # noqa: F401  # the session fixture
)

LIMITS = pdf.Limits(max_bytes=20 * pdf.MB, max_pages=50)
A4_GREY_300_TARGET = 150 * 1024  # the budget per page


# --- checking a PDF to print --------------------------------------------------------------


def test_a_clean_three_page_pdf_passes() -> None:
    assert pdf.check_pdf(pdf_of(3), LIMITS).pages == 3


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"GIF89a not a pdf at all", "not_pdf", "n'est pas un PDF"),
        (b"%PDF-1.7\n" + b"garbage " * 100, "damaged", "endommagé"),
        (pdf_of(2, encrypt=True), "encrypted", "mot de passe"),
        (pdf_of(51), "too_many_pages", "51 pages"),
    ],
    ids=["not-a-pdf", "damaged", "encrypted", "too-many-pages"],
)
def test_bad_pdfs_are_refused_with_a_french_message(data: bytes, code: str, words: str) -> None:
    with pytest.raises(DocumentError) as caught:
        pdf.check_pdf(data, LIMITS)
    assert caught.value.code == code
    assert words in caught.value.message


def test_a_truncated_pdf_is_damaged() -> None:
    data = pdf_of(3)
    with pytest.raises(DocumentError) as caught:
        pdf.check_pdf(data[: len(data) // 2], LIMITS)
    assert caught.value.code == "damaged"


def test_a_five_thousand_page_pdf_is_refused_quickly() -> None:
    data = pdf_of(5000)
    with pytest.raises(DocumentError) as caught:
        pdf.check_pdf(data, LIMITS)
    assert caught.value.code == "too_many_pages"
    assert "5000 pages" in caught.value.message


def test_size_is_refused_from_the_announcement() -> None:
    with pytest.raises(DocumentError) as caught:
        pdf.check_announced_size(200 * pdf.MB, LIMITS)
    assert caught.value.code == "too_large"
    assert caught.value.message == (
        "Le fichier est trop lourd (200 Mo) : le guichet imprime jusqu'à 20 Mo."
    )
    assert pdf.megabytes(1572864) == "1,5 Mo"


# --- assembling scans -----------------------------------------------------------------------


def _images(page: Any) -> list[Any]:
    return [x for x in page.Resources.XObject.values() if x.Subtype == pikepdf.Name.Image]


def _page_image_size(data: bytes) -> list[tuple[int, int]]:
    with pikepdf.open(io.BytesIO(data)) as document:
        sizes = []
        for page in document.pages:
            images = _images(page)
            assert len(images) == 1
            sizes.append((int(images[0].Width), int(images[0].Height)))
        return sizes


def test_a_grey_a4_text_page_at_300_dpi_fits_the_rural_budget() -> None:
    width, height, pixels = scanned_text_page(300)
    page = ScannedPage(width, height, "L", 300, pixels)
    encoded = pdf.encode_page(page)
    data = pdf.assemble([encoded])
    sys.stdout.write(f"\nA4 grey 300 dpi text page: {len(encoded)} bytes in the PDF\n")
    assert len(encoded) <= A4_GREY_300_TARGET
    assert _page_image_size(data) == [(width, height)]
    with pikepdf.open(io.BytesIO(data)) as document:
        box = document.pages[0].mediabox
        assert round(float(box[2]) / 72 * 300) == width  # the page is the scanned area


def test_black_and_white_pages_are_ccitt_group_4() -> None:
    from PIL import Image

    width, height, pixels = scanned_text_page(300)
    bilevel = Image.frombytes("L", (width, height), pixels).point(lambda v: 255 if v > 160 else 0)
    image = bilevel.convert("1")
    page = ScannedPage(width, height, "1", 300, image.tobytes())
    data = pdf.assemble([pdf.encode_page(page)])
    with pikepdf.open(io.BytesIO(data)) as document:
        stream = _images(document.pages[0])[0]
        filters = stream.Filter if isinstance(stream.Filter, pikepdf.Array) else [stream.Filter]
        assert list(filters) == [pikepdf.Name.CCITTFaxDecode]
    assert len(data) < 100 * 1024


def test_thumbnails_are_small() -> None:
    width, height, pixels = scanned_text_page(150)
    thumbnail = pdf.thumbnail(ScannedPage(width, height, "L", 150, pixels))
    assert 0 < len(thumbnail) < 16 * 1024


# --- SANE: the real test backend ----------------------------------------------------------


async def test_a_grey_300_dpi_scan_becomes_a_pdf_page_of_the_scanners_pixel_size(
    sane_test_backend: str,
) -> None:
    scanner = SaneScanner(sane_test_backend)
    scanner.extra_options = {**NO_FAULT, "test_picture": "Grid"}
    seen: list[ScannedPage] = []
    pages = await scanner.scan(ScanSettings(300, "gray", "flatbed"), seen.append)
    assert len(pages) == 1
    page = pages[0]
    assert (page.mode, page.dpi) == ("L", 300)
    assert (page.width, page.height) == (2362, 2362)  # the test backend stops at 200 mm
    encoded = pdf.encode_page(page)
    data = pdf.assemble([encoded])
    assert _page_image_size(data) == [(page.width, page.height)]
    sys.stdout.write(f"\nSANE test grid 300 dpi grey: {len(encoded)} bytes per page\n")
    assert len(seen) == 1  # on_page ran on the loop


async def test_the_feeder_scans_every_page(sane_test_backend: str) -> None:
    scanner = SaneScanner(sane_test_backend)
    assert await scanner.has_feeder()
    pages = await scanner.scan(ScanSettings(150, "lineart", "adf"), lambda page: None)
    assert len(pages) > 1
    assert {p.mode for p in pages} == {"1"}


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        ("SANE_STATUS_JAMMED", "scanner_jammed", "bourré"),
        ("SANE_STATUS_COVER_OPEN", "scanner_cover_open", "capot"),
        ("SANE_STATUS_DEVICE_BUSY", "scanner_unavailable", "occupé"),
        ("SANE_STATUS_IO_ERROR", "scanner_failed", "n'a pas pu numériser"),
    ],
)
async def test_a_scanner_fault_becomes_a_french_message(
    sane_test_backend: str, status: str, code: str, words: str
) -> None:
    scanner = SaneScanner(sane_test_backend)
    scanner.extra_options = fault(status)
    try:
        with pytest.raises(DocumentError) as caught:
            await scanner.scan(ScanSettings(150, "gray", "flatbed"), lambda page: None)
    finally:
        scanner.extra_options = NO_FAULT
        await scanner.scan(ScanSettings(150, "gray", "flatbed"), lambda page: None)
    assert caught.value.code == code
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Document feeder jammed", "scanner_jammed"),
        ("Scanner cover is open", "scanner_cover_open"),
        ("Document feeder out of documents", "scanner_no_document"),
        ("Device busy", "scanner_unavailable"),
        ("something new", "scanner_failed"),
    ],
)
def test_sane_status_texts_are_translated_at_the_boundary(text: str, code: str) -> None:
    assert translate(RuntimeError(text)).code == code
