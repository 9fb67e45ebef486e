"""Issue 12, finding 11: a 2 MB PDF whose one content stream inflates to 2 GB passed the
counter's check and went to CUPS. The check now bounds what the streams decompress to."""

from __future__ import annotations

import io
import zlib

import pikepdf
import pytest

from appliance.documents.pdf import MAX_INFLATED_BYTES, Limits, check_pdf
from appliance.errors import DocumentError

GB = 1024**3
CHUNK = b"\0" * (16 * 1024 * 1024)


def _bomb_pdf(inflated: int) -> bytes:
    """A one-page PDF whose content stream is ``inflated`` bytes once decompressed."""
    packer = zlib.compressobj(9)
    deflated = b"".join(packer.compress(CHUNK) for _ in range(inflated // len(CHUNK)))
    deflated += packer.flush()
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    contents = pikepdf.Stream(pdf, b"")
    contents.write(deflated, filter=pikepdf.Name.FlateDecode)
    pdf.pages[0].Contents = contents
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


def test_a_stream_inflating_to_2_gb_is_refused() -> None:
    data = _bomb_pdf(2 * GB)
    assert len(data) < 3 * 1024 * 1024  # a small file, well under the size limit
    with pytest.raises(DocumentError) as refused:
        check_pdf(data, Limits())
    assert refused.value.code == "too_large"
    assert "décompressé" in str(refused.value)


def test_an_ordinary_compressed_pdf_still_passes() -> None:
    data = _bomb_pdf(32 * 1024 * 1024)  # well within MAX_INFLATED_BYTES
    assert MAX_INFLATED_BYTES > 32 * 1024 * 1024
    assert check_pdf(data, Limits()).pages == 1
