"""The bundled DejaVu Sans faces, prepared once per process for fast PDF rendering.

fpdf2 parses a TrueType file on every ``add_font`` and subsets it again on every
``output``: about 170 ms per document for the full DejaVu faces. Here, once per process,
each face is cut down to the characters invoices use (``DOCUMENT_RANGES``: Latin,
punctuation, currency signs) and parsed into a template ``TTFFont``; each document then
gets a cheap copy with its own glyph map and a fresh ``TTFont`` over the cut-down
bytes (``recalcBBoxes=False``: outlines are never edited, so the stored boxes stay right).
``missing_glyphs`` tells the caller to draw again with ``full=True`` when a document needs a
character outside the cut-down set.

The copy relies on fpdf2 internals (``TTFFont`` attributes, ``SubsetMap``); if they change,
``install_fonts`` falls back to the public ``add_font`` with the full files: documents stay
correct, only slower (a warning is logged).
"""

from __future__ import annotations

import copy
import functools
import logging
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools import subset as ftsubset  # type: ignore[import-untyped]
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

__all__ = ["DOCUMENT_RANGES", "FAMILY", "install_fonts", "missing_glyphs", "preload_fonts"]
log = logging.getLogger(__name__)

FAMILY = "dejavu"
FONT_DIR = Path(__file__).resolve().parent
FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
DOCUMENT_RANGES = (
    (0x20, 0x7E), (0xA0, 0x17F), (0x218, 0x21B), (0x2010, 0x2027), (0x2030, 0x203A),
    (0x20A0, 0x20C0), (0x2116, 0x2116), (0x2122, 0x2122), (0x2212, 0x2212),
)


@dataclass(frozen=True, slots=True)
class _Face:
    template: TTFFont
    data: bytes


def _document_subset(path: Path) -> bytes:
    font = ttLib.TTFont(path, recalcTimestamp=False)
    options = ftsubset.Options()
    options.notdef_outline = options.recommended_glyphs = options.glyph_names = True
    options.hinting = False
    options.layout_features = []
    options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "kern"]
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=[c for lo, hi in DOCUMENT_RANGES for c in range(lo, hi + 1)])
    subsetter.subset(font)
    cmap = font["cmap"]  # the Windows Unicode BMP table is the one fpdf2 reads
    cmap.tables = [t for t in cmap.tables if (t.platformID, t.platEncID) == (3, 1)]
    out = BytesIO()
    font.save(out)
    return out.getvalue()


def _template(style: str, data: bytes) -> TTFFont:
    with tempfile.TemporaryDirectory(prefix="autoinvoice-font-") as tmp:
        path = Path(tmp) / "face.ttf"
        path.write_bytes(data)
        host = FPDF()
        host.add_font(FAMILY, style, path)
        font = host.fonts[FAMILY + style]
        assert isinstance(font, TTFFont)
        font.close()
        return font


@functools.cache
def _faces(full: bool) -> dict[str, _Face]:
    """Per style, a parsed template and the bytes to embed (cut down unless ``full``)."""
    faces = {}
    for style, name in FACES.items():
        path = FONT_DIR / name
        data = path.read_bytes() if full else _document_subset(path)
        faces[style] = _Face(_template(style, data), data)
    return faces


def preload_fonts() -> None:
    """Pays the one-off cost (about half a second) now instead of on the first document."""
    _faces(False)


def install_fonts(pdf: FPDF, *, full: bool = False) -> None:
    """Registers the regular ("") and bold ("B") faces of ``FAMILY`` on ``pdf``."""
    try:
        for style, face in _faces(full).items():
            font = copy.copy(face.template)
            font.i = len(pdf.fonts) + 1
            # lazy=None: tables are read when first used; lazy=True (per glyph) is slower here
            font.ttfont = ttLib.TTFont(BytesIO(face.data), recalcBBoxes=False,
                                       recalcTimestamp=False)
            font.cw = copy.copy(face.template.cw)
            font.desc = copy.copy(face.template.desc)
            font.missing_glyphs, font.biggest_size_pt, font._hbfont = [], 0, None
            font.subset = SubsetMap(font)
            pdf.fonts[FAMILY + style] = font
    except (AttributeError, TypeError):
        log.warning("fpdf2 font internals changed; loading fonts the slow way", exc_info=True)
        for style, name in FACES.items():
            pdf.fonts.pop(FAMILY + style, None)
            pdf.add_font(FAMILY, style, FONT_DIR / name)


def missing_glyphs(pdf: FPDF) -> bool:
    """Whether text drawn on ``pdf`` asked for a character its fonts lack."""
    return any(isinstance(f, TTFFont) and f.missing_glyphs for f in pdf.fonts.values())
