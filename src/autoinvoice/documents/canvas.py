"""Drawing primitives for the PDF documents: fonts, text measured from the font's width
table, wrapping, rules, boxes and images, in millimetres on an fpdf2 page."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

from fpdf import FPDF
from fpdf.drawing_primitives import DeviceRGB
from PIL import Image

from autoinvoice.documents.fonts import FAMILY

log = logging.getLogger("autoinvoice.documents.pdf")

RGB = tuple[int, int, int]
INK: RGB = (33, 37, 41)
MUTED: RGB = (108, 117, 125)
ACCENT: RGB = (24, 62, 110)
RULE: RGB = (206, 212, 218)
SHADE: RGB = (237, 241, 246)
WARN: RGB = (176, 74, 0)
LINK: RGB = (13, 88, 170)
MM_PER_PT = 25.4 / 72


@functools.cache
def _device(color: RGB) -> DeviceRGB:
    return DeviceRGB(*(c / 255 for c in color))


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: float
    align: str  # "L" or "R"


class Document(FPDF):
    """fpdf2 calls ``header``/``footer`` at each page break; the renderer fills them in."""

    on_header: Callable[[], None] | None = None
    on_footer: Callable[[], None] | None = None

    def header(self) -> None:
        if self.on_header:
            self.on_header()

    def footer(self) -> None:
        if self.on_footer:
            self.on_footer()


class Canvas:
    """A page being drawn: ``pdf`` plus the text area ``x0``..``x1``."""

    pdf: Document
    x0: float
    x1: float
    #: names the document in warnings (e.g. the job id)
    label: str = ""

    def font(self, size: float, bold: bool = False, color: RGB = INK) -> None:
        pdf, style = self.pdf, "B" if bold else ""
        if pdf.font_size_pt != size or pdf.font_style != style or pdf.font_family != FAMILY:
            pdf.set_font(FAMILY, style, size)
        if pdf.text_color != _device(color):
            pdf.set_text_color(*color)

    def text(self, x: float, baseline: float, s: str, size: float = 9, bold: bool = False,
             color: RGB = INK, align: str = "L") -> float:
        self.font(size, bold, color)
        width = self.width(s)
        shift = {"R": width, "C": width / 2}.get(align, 0.0)
        self.pdf.text(x - shift, baseline, s)
        return width

    def width(self, s: str) -> float:
        """``s`` in the current font, in mm (fpdf2's get_string_width minus bidi/markdown)."""
        font = self.pdf.current_font
        assert font is not None
        return font.get_text_width(s, self.pdf.font_size_pt, None)[1] / self.pdf.k

    @staticmethod
    def lead(size: float) -> float:
        return size * MM_PER_PT * 1.32

    def wrap(self, s: str, width: float, size: float = 9, bold: bool = False) -> list[str]:
        """``s`` broken into lines no wider than ``width`` mm (long words broken too)."""
        self.font(size, bold)
        space = self.width(" ")
        lines: list[str] = []
        for para in s.splitlines() or [""]:
            line, used = "", 0.0
            for word in para.split(" "):
                wide = self.width(word)
                if used + wide + (space if line else 0) <= width:
                    line, used = (f"{line} {word}", used + space + wide) if line else (word, wide)
                    continue
                if line:
                    lines.append(line)
                while len(word) > 1 and wide > width:
                    cut = self._cut(word, width)
                    lines.append(word[:cut])
                    word = word[cut:]
                    wide = self.width(word)
                line, used = word, wide
            lines.append(line)
        return lines

    def _cut(self, word: str, width: float) -> int:
        """Where to break a word too long for a line: after "@", "/", "-" or "." if possible."""
        fit = next((i for i in range(len(word), 1, -1) if self.width(word[:i]) <= width), 1)
        soft = max(word.rfind(c, 0, fit) for c in "@/-.?&")
        return soft + 1 if soft > fit // 3 else fit

    def lines(self, x: float, top: float, lines: Sequence[str], size: float = 9,
              bold: bool = False, color: RGB = INK, align: str = "L") -> float:
        """Draws ``lines`` from ``top`` down; returns the y below them."""
        step = self.lead(size)
        for i, line in enumerate(lines):
            self.text(x, top + step * i + size * MM_PER_PT * 0.85, line, size, bold, color, align)
        return top + step * len(lines)

    def rule(self, y: float, x0: float | None = None, x1: float | None = None,
             color: RGB = RULE, width: float = 0.25) -> None:
        self.pdf.set_draw_color(*color)
        self.pdf.set_line_width(width)
        self.pdf.line(x0 if x0 is not None else self.x0, y, x1 if x1 is not None else self.x1, y)

    def box(self, x: float, y: float, w: float, h: float, fill: RGB | None = SHADE,
            border: RGB | None = None) -> None:
        if fill:
            self.pdf.set_fill_color(*fill)
        if border:
            self.pdf.set_draw_color(*border)
            self.pdf.set_line_width(0.4)
        style = ("F" if fill else "") + ("D" if border else "")
        self.pdf.rect(x, y, w, h, style=style)

    def caption(self, x: float, top: float, s: str, align: str = "L") -> float:
        self.text(x, top + 2.4, s.upper(), 7, True, MUTED, align)
        return top + 4.2

    def image(self, data: bytes, x: float, y: float, w: float, h: float, *, center: bool
              ) -> bool:
        """Fits ``data`` (PNG/JPEG) into the box; False (and a warning) when it is unreadable."""
        try:
            with Image.open(BytesIO(data)) as img:
                width, height = img.size
            scale = min(w / width, h / height)
            iw, ih = width * scale, height * scale
            if center:
                x, y = x + (w - iw) / 2, y + (h - ih) / 2
            self.pdf.image(BytesIO(data), x=x, y=y, w=iw, h=ih)
        except (ValueError, OSError, RuntimeError, ZeroDivisionError):
            log.warning("%s: unreadable image skipped", self.label)
            return False
        return True
