"""The signature blocks' text, set in the font the signature page already embeds.

pyHanko's OpenType engine subsets and embeds the font again for every
signature (about 40 ms and 50 KB each).  The prepared document already carries
SignflowSans as a simple TrueType font with WinAnsiEncoding, so the stamp
refers to that object instead: same glyphs, nothing added per signature.
"""

from __future__ import annotations

from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import FontEngine, FontEngineFactory, ShapeResult
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from signflow.pdf.pages import FONT_FILES, font_data


def find_embedded_font(writer: BasePdfFileWriter, base_font: str) -> generic.IndirectObject | None:
    """A reference to the font named *base_font* on the last page, if it is there."""
    pages = writer.root["/Pages"]
    while "/Kids" in pages:
        pages = pages["/Kids"][-1].get_object()
    fonts = pages.get("/Resources", generic.DictionaryObject()).get("/Font")
    if not isinstance(fonts, generic.DictionaryObject):
        return None
    for key in fonts:
        ref = fonts.raw_get(key)
        font = ref.get_object() if isinstance(ref, generic.IndirectObject) else ref
        if isinstance(ref, generic.IndirectObject) and font.get("/BaseFont") == "/" + base_font:
            return ref
    return None


class EmbeddedSimpleFont(FontEngine):
    """Shapes WinAnsi text with the embedded font's own widths."""

    def __init__(self, writer: BasePdfFileWriter, ref: generic.IndirectObject,
                 widths: tuple[int, ...], font_size: int) -> None:
        super().__init__(writer, "SignflowSans-embedded", embedded_subset=False,
                         font_size=font_size)
        self.ref = ref
        self.widths = widths

    @property
    def uses_complex_positioning(self) -> bool:
        return False

    def shape(self, txt: str) -> ShapeResult:
        raw = txt.encode("cp1252", errors="replace")
        ops = BytesIO()
        escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        ops.write(b"(" + escaped + b") Tj")
        advance = sum(self.widths[c - 32] if 32 <= c < 256 else 500 for c in raw) / 1000
        return ShapeResult(graphics_ops=ops.getvalue(), x_advance=advance, y_advance=0)

    def as_resource(self) -> generic.PdfObject:
        return self.ref


class StampFontFactory(FontEngineFactory):
    """The page's embedded font when the document has it; otherwise embed it (OpenType)."""

    def __init__(self, font_size: int = 9) -> None:
        self.font_size = font_size
        self.data = font_data(False)

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream=None) -> FontEngine:
        ref = find_embedded_font(writer, self.data.name)
        if ref is None:
            return GlyphAccumulatorFactory(str(FONT_FILES[False]), font_size=self.font_size
                                           ).create_font_engine(writer, obj_stream)
        return EmbeddedSimpleFont(writer, ref, self.data.widths, self.font_size)
