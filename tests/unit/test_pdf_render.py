"""The PDF as a reader sees it: each page rendered to PNG (pypdfium2, 200 dpi) and read back
with OCR (the ``tesseract`` CLI; CI installs ``tesseract-ocr tesseract-ocr-deu``). The text
extraction tests in ``test_pdf.py`` prove the text is in the file; these prove it is drawn on
the page where a person can read it. Kept to three documents: OCR costs about a second a page.

OCR may read "," for "." or drop a currency sign, so amounts are compared by their digits,
and words with the whitespace collapsed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from autoinvoice.documents.formats import Formats
from autoinvoice.documents.pdf import render_invoice_pdf
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Signature
from tests.unit.test_pdf import (
    CST,
    SIGNATURE_PNG,
    german_language_invoice,
    long_invoice,
    us_invoice,
)

DPI = 200


@functools.cache
def _ocr_languages() -> frozenset[str]:
    if shutil.which("tesseract") is None:
        return frozenset()
    listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return frozenset(listed.split()[1:])  # after the "List of available languages" heading


pytestmark = pytest.mark.ocr


def need_ocr(language: str) -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-deu)")
    if language not in _ocr_languages():
        pytest.skip(f"tesseract has no {language!r} language data "
                    f"(apt-get install tesseract-ocr-{language})")


def render_pngs(pdf: bytes, folder: Path) -> list[Path]:
    """Each page as a PNG at ``DPI``."""
    document = pdfium.PdfDocument(pdf)
    paths = []
    try:
        for number in range(len(document)):
            page = document[number]
            path = folder / f"page-{number + 1}.png"
            page.render(scale=DPI / 72).to_pil().save(path)
            page.close()
            paths.append(path)
    finally:
        document.close()
    return paths


def ocr(png: Path, language: str) -> str:
    """The page's text, whitespace collapsed."""
    # One thread: tesseract's OpenMP threads make it several times slower on a busy machine.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    out = subprocess.run(["tesseract", str(png), "-", "-l", language, "--dpi", str(DPI)],
                         capture_output=True, text=True, check=True, timeout=60, env=env).stdout
    return " ".join(out.split())


def digit_tokens(text: str) -> set[str]:
    """The digits of every token that has any: "$2,519.50" -> "251950"."""
    return {d for d in (re.sub(r"\D", "", token) for token in text.split()) if d}


def digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def squashed(text: str) -> str:
    """Without spaces, and "l", "I", "|" read as "1": "Seite lvon1" -> "Seite1von1"."""
    return re.sub(r"\s", "", text).translate(str.maketrans("lI|", "111"))


def alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text).upper()


def dark_share(png: Path, top: float, bottom: float) -> float:
    """The share of dark pixels between ``top`` and ``bottom`` (fractions of the height)."""
    with Image.open(png) as img:
        gray = img.convert("L")
        box = (0, int(gray.height * top), gray.width, int(gray.height * bottom))
        histogram = gray.crop(box).histogram()
    return sum(histogram[:128]) / sum(histogram)


def read_pages(invoice: Invoice, language: str, tmp_path: Path) -> list[tuple[Path, str]]:
    """Each page's PNG and its OCR text; the pages are read in parallel."""
    pngs = render_pngs(render_invoice_pdf(invoice, language=language), tmp_path)
    model = "deu" if language == "de" else "eng"
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(zip(pngs, pool.map(lambda png: ocr(png, model), pngs), strict=True))


def assert_readable(invoice: Invoice, pages: list[str], fmt: Formats) -> None:
    """The number, every line's amount and the totals are on the pages."""
    text = " ".join(pages)
    tokens = digit_tokens(text)
    assert alnum(invoice.number or "") in alnum(text)
    for line in invoice.lines:
        assert digits(fmt.amount(line.amount)) in tokens, (line.description, fmt.amount(
            line.amount))
    for total in (invoice.subtotal, invoice.tax_total, invoice.total):
        assert digits(fmt.amount(total)) in tokens, fmt.amount(total)


def signed_us_invoice() -> Invoice:
    invoice = us_invoice()
    signature = Signature("Dana Whitfield", datetime(2026, 11, 20, 21, 50, tzinfo=CST),
                          "on_device", "Plant manager", SIGNATURE_PNG)
    return dataclasses.replace(invoice, job=dataclasses.replace(invoice.job, signature=signature))


def test_english_invoice_with_signature_reads_back(tmp_path: Path) -> None:
    # given
    need_ocr("eng")
    invoice = signed_us_invoice()

    # when
    [(png, text)] = read_pages(invoice, "en", tmp_path)

    # then
    assert_readable(invoice, [text], Formats("US"))
    for words in ("INVOICE", "Bill to", "Dana Whitfield", "Plant manager",
                  "Acme Plastics Inc.", "Thermostatic valve kit"):
        assert words.upper() in text.upper(), words
    assert squashed("Page 1 of 1") in squashed(text)
    assert dark_share(png, 0.40, 0.62) > 0.01  # the line table is drawn


def test_german_invoice_reads_back_in_german(tmp_path: Path) -> None:
    # given
    need_ocr("deu")
    invoice = german_language_invoice()

    # when
    [(png, text)] = read_pages(invoice, "de", tmp_path)

    # then
    assert_readable(invoice, [text], Formats("DE", "de"))
    for words in ("RECHNUNG", "Rechnungsempfänger", "Zwischensumme", "Thomas Feldmann",
                  "Zahlungsinformationen", "27.11.2026"):
        assert words.upper() in text.upper(), words
    assert squashed("Seite 1 von 1") in squashed(text)
    assert "1.234,56" in text
    assert digits("DE89 3704 0044 0532 0130 00") in digits(text)
    assert dark_share(png, 0.40, 0.60) > 0.01


def test_two_page_invoice_reads_back_on_both_pages(tmp_path: Path) -> None:
    # given
    need_ocr("eng")
    invoice = long_invoice(24)

    # when
    pages = read_pages(invoice, "en", tmp_path)

    # then
    assert len(pages) == 2
    texts = [text for _, text in pages]
    assert_readable(invoice, texts, Formats("DE"))
    for number, text in enumerate(texts, start=1):
        assert squashed(f"Page {number} of 2") in squashed(text)
        assert "Description" in text  # the table header, repeated
    assert "Thomas Feldmann" in texts[1]
    assert all(dark_share(png, 0.2, 0.5) > 0.01 for png, _ in pages)
