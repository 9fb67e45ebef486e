"""Documents generated at test time: PDFs of n pages, and a scanned-looking A4 text page."""

from __future__ import annotations

import io
import random

A4_POINTS = (595, 842)


def pdf_of(pages: int, *, encrypt: bool = False) -> bytes:
    """A valid PDF with ``pages`` A4 pages, each saying its number."""
    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont="/Helvetica"
        )
    )
    for number in range(1, pages + 1):
        page = pdf.add_blank_page(page_size=A4_POINTS)
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        text = f"BT /F1 24 Tf 72 760 Td (Guichet Proche - page {number}) Tj ET".encode()
        page.Contents = pdf.make_stream(text)
    out = io.BytesIO()
    if encrypt:
        pdf.save(out, encryption=pikepdf.Encryption(user="secret", owner="secret"))
    else:
        pdf.save(out)
    return out.getvalue()


def scanned_text_page(dpi: int = 300, *, seed: int = 1) -> tuple[int, int, bytes]:
    """A grey A4 page as a scanner would give it: dark text lines on slightly grainy paper.

    Returns (width, height, pixels) in Pillow's "L" mode.
    """
    from PIL import Image, ImageDraw, ImageFont

    width, height = round(8.27 * dpi), round(11.69 * dpi)
    image = Image.new("L", (width, height), 242)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", dpi // 7)
    except OSError:
        font = ImageFont.load_default()
    rng = random.Random(seed)
    words = ("allocation", "logement", "attestation", "caisse", "famille", "revenu", "montant")
    y = dpi
    while y < height - dpi:
        line = " ".join(rng.choice(words) for _ in range(9))
        draw.text((dpi * 3 // 4, y), line, fill=rng.randint(20, 60), font=font)
        y += dpi // 4
    # Paper grain (Gaussian, around 238) wherever there is no ink.
    grain = Image.effect_noise((width, height), 5).point(lambda v: min(255, v + 110))
    ink = image.point(lambda v: 255 if v < 200 else 0)
    return width, height, Image.composite(image, grain, ink).tobytes()
