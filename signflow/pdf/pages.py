"""Drawing simple text pages with pikepdf: the signature page, footers, samples.

Text is set in SignflowSans (DejaVu Sans, subset to Windows-1252), embedded
as a simple TrueType font with WinAnsiEncoding: it renders å, ä, ö the same
in every viewer and keeps the document self-contained for archiving.
"""

from __future__ import annotations

import functools
import io
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pikepdf
from pikepdf import Dictionary, Name

A4 = (595.0, 842.0)
MARGIN = 60.0


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 10.0
    bold: bool = False


#: Letters of names common in Sweden that Windows-1252 lacks (Polish, Turkish,
#: Bosnian/Croatian/Serbian, Sami, Romanian): the pages' simple font gives them the
#: codes 1252 leaves free, through its encoding's /Differences.  Printed as "?"
#: before ("Łukasz Wiśniewski" came out "?ukasz Wi?niewski" on the signature page).
EXTRA = "ŁłŚśĆćŃńŹźŻżĄąĘęŞşĞğİıČčĐđŊŋŦŧȘșȚțĂă"
#: The codes 1252 does not use (the control codes but NUL, DEL, and its five holes).
_FREE = (*range(0x01, 0x20), 0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D)
assert len(EXTRA) <= len(_FREE)
EXTRA_CODES = {char: code for char, code in zip(EXTRA, _FREE, strict=False)}
_LETTERS = {code: char for char, code in EXTRA_CODES.items()}
#: The font's first code: 1, as the extra letters start there.
FIRST_CHAR = 0x01


def encode(text: str) -> bytes:
    """*text* in the pages' font encoding: Windows-1252 and :data:`EXTRA`; "?" for
    anything else (composed first: "s" + a combining acute is "ś")."""
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        code = EXTRA_CODES.get(char)
        if code is None:
            byte = char.encode("cp1252", errors="replace")
            # (a control character given as text is none of our letters)
            code = byte[0] if len(byte) == 1 and byte[0] >= 0x20 else 63
        out.append(code)
    return bytes(out)


def decode(raw: bytes) -> str:
    """The inverse of :func:`encode`."""
    return "".join(_LETTERS.get(b) or bytes([b]).decode("cp1252", errors="replace") for b in raw)


def pdf_string(text: str) -> bytes:
    """*text* as a PDF literal string in the pages' font encoding; control bytes as
    octal escapes (a raw CR in a string would be read as LF)."""
    return string_of(encode(text))


def string_of(raw: bytes) -> bytes:
    """Bytes already in the font encoding as a PDF literal string."""
    out = bytearray(b"(")
    for b in raw:
        if b in (0x28, 0x29, 0x5C):
            out += b"\\" + bytes([b])
        elif b < 0x20 or b == 0x7F:
            out += b"\\%03o" % b
        else:
            out.append(b)
    return bytes(out + b")")


FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FONT_FILES = {False: FONT_DIR / "SignflowSans.ttf", True: FONT_DIR / "SignflowSans-Bold.ttf"}


@dataclass(frozen=True)
class FontData:
    """What a simple TrueType font dictionary needs, read once per process."""

    name: str
    data: bytes
    #: From :data:`FIRST_CHAR` to 255: ``widths[code - FIRST_CHAR]``; see :meth:`width`.
    widths: tuple[int, ...]
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int

    def width(self, raw: bytes) -> int:
        """The width of encoded text in thousandths of the font size."""
        return sum(self.widths[b - FIRST_CHAR] if b >= FIRST_CHAR else 0 for b in raw)

    def cut(self, raw: bytes, room: float) -> bytes:
        """Encoded text ending in "…", as much of it as fits in *room* (thousandths
        of the font size) with that mark."""
        ellipsis = encode("…")
        while raw and self.width(raw.rstrip(b" ") + ellipsis) > room:
            raw = raw[:-1]
        return raw.rstrip(b" ") + ellipsis


@functools.cache
def font_data(bold: bool) -> FontData:
    from fontTools.ttLib import TTFont

    path = FONT_FILES[bold]
    tt = TTFont(path)
    scale = 1000 / tt["head"].unitsPerEm
    cmap, hmtx = tt.getBestCmap(), tt["hmtx"]
    widths = []
    for code in range(FIRST_CHAR, 256):
        char = _LETTERS.get(code) or (bytes([code]).decode("cp1252", errors="ignore")
                                      if code >= 0x20 else "")
        glyph = cmap.get(ord(char)) if char else None
        widths.append(round(hmtx[glyph][0] * scale) if glyph else 0)
    head, hhea = tt["head"], tt["hhea"]
    return FontData(
        name=tt["name"].getDebugName(6) or "SignflowSans", data=path.read_bytes(),
        widths=tuple(widths), bbox=(head.xMin, head.yMin, head.xMax, head.yMax),
        ascent=hhea.ascent, descent=hhea.descent,
        cap_height=getattr(tt["OS/2"], "sCapHeight", hhea.ascent),
    )


def _font(pdf: pikepdf.Pdf, bold: bool) -> pikepdf.Object:
    f = font_data(bold)
    file = flate_stream(pdf, f.data)
    file[Name.Length1] = len(f.data)
    descriptor = pdf.make_indirect(Dictionary(
        Type=Name.FontDescriptor, FontName=Name("/" + f.name), Flags=32,
        FontBBox=list(f.bbox), ItalicAngle=0, Ascent=f.ascent, Descent=f.descent,
        CapHeight=f.cap_height, StemV=120 if bold else 80, FontFile2=file,
    ))
    return pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.TrueType, BaseFont=Name("/" + f.name),
        FirstChar=FIRST_CHAR, LastChar=255, Widths=list(f.widths),
        Encoding=_encoding(), FontDescriptor=descriptor,
    ))


def _encoding() -> Dictionary:
    """WinAnsi with :data:`EXTRA` on the free codes, by names that map to Unicode
    (``uniXXXX``), which viewers look up in the font's Unicode cmap."""
    differences: list = []
    last = None
    for char, code in EXTRA_CODES.items():
        if code != last:
            differences.append(code)
        differences.append(Name(f"/uni{ord(char):04X}"))
        last = code + 1
    return Dictionary(Type=Name.Encoding, BaseEncoding=Name.WinAnsiEncoding,
                      Differences=differences)


def _fonts(pdf: pikepdf.Pdf) -> tuple[pikepdf.Object, pikepdf.Object]:
    """The regular and bold fonts, embedded once per document."""
    cache = getattr(pdf, "_signflow_fonts", None)
    if cache is None:
        cache = (_font(pdf, False), _font(pdf, True))
        pdf._signflow_fonts = cache  # type: ignore[attr-defined]
    return cache


def text_ops(items: Iterable[Text], regular: str, bold: str) -> bytes:
    out = [b"BT"]
    for t in items:
        font = bold if t.bold else regular
        out.append(f"/{font} {t.size:g} Tf 1 0 0 1 {t.x:.2f} {t.y:.2f} Tm".encode())
        out.append(pdf_string(t.text) + b" Tj")
    out.append(b"ET")
    return b"\n".join(out)


def add_text_page(
    pdf: pikepdf.Pdf, items: Sequence[Text], *, extra_ops: bytes = b"",
    fonts: tuple[pikepdf.Object, pikepdf.Object] | None = None,
) -> pikepdf.Page:
    regular, bold = fonts or _fonts(pdf)
    content = text_ops(items, "F1", "F2") + b"\n" + extra_ops
    page = pikepdf.Page(Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, A4[0], A4[1]],
        Resources=Dictionary(Font=Dictionary(F1=regular, F2=bold)),
        Contents=flate_stream(pdf, content),
    ))
    pdf.pages.append(page)
    return pdf.pages[-1]


def qr_ops(payload: str, x: float, y: float, size: float) -> bytes:
    """A QR code of *payload* as filled squares, *size* points wide, at (x, y)."""
    import segno

    matrix = segno.make(payload, error="m").matrix
    cell = size / len(matrix)
    rects = []
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 1) * cell
        for col_index, dark in enumerate(row):
            if dark:
                rects.append(f"{x + col_index * cell:.3f} {top:.3f} {cell:.3f} {cell:.3f} re")
    return ("q 0 g " + " ".join(rects) + " f Q").encode()


def flate_stream(pdf: pikepdf.Pdf, data: bytes) -> pikepdf.Stream:
    """A stream we write ourselves, compressed (the upload's are copied untouched)."""
    stream = pdf.make_stream(zlib.compress(data, 6))
    stream[Name.Filter] = Name.FlateDecode
    return stream


def add_footer(pdf: pikepdf.Pdf, text: str, qr_payload: str = "") -> None:
    """Stamp *text* (and a QR code) at the bottom of every page, isolated from its state.

    Pages of one size share one QR stream, so a 1000-page protocol carries it once.
    """
    regular, _ = _fonts(pdf)
    save = pdf.make_indirect(flate_stream(pdf, b"q"))
    qr_streams: dict[tuple[float, float], pikepdf.Stream] = {}
    for page in pdf.pages:
        name = page.add_resource(regular, Name.Font, prefix="SfFoot")
        box = page.mediabox
        x0, y0, x1 = float(box[0]), float(box[1]), float(box[2])
        ops = (b"Q q BT " + f"{name} 7 Tf 0.35 g 1 0 0 1 {x0 + 36:.2f} "
               f"{y0 + 14:.2f} Tm ".encode() + pdf_string(text) + b" Tj ET Q")
        page.contents_add(save, prepend=True)
        page.contents_add(flate_stream(pdf, ops), prepend=False)
        if qr_payload:
            key = (x1, y0)
            if key not in qr_streams:
                qr_streams[key] = cast(pikepdf.Stream, pdf.make_indirect(flate_stream(
                    pdf, qr_ops(qr_payload, x1 - 36 - 34, y0 + 8, 34))))
            page.contents_add(qr_streams[key], prepend=False)


def wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def sample_protocol() -> bytes:
    """A two-page protocol like the one signflow exists for (demo and tests)."""
    pdf = pikepdf.new()
    title = [
        Text(MARGIN, 780, "Protokoll nr 2 2026", 18, True),
        Text(MARGIN, 756, "Kommundirektörsmöte i Exempelregionen", 12),
        Text(MARGIN, 738, "Tid och plats: Den 27 februari 2026 08.30–12.00, Stadshuset", 10),
        Text(MARGIN, 712, "Närvarande:", 10, True),
    ]
    people = ["Åsa Öberg, Ängelholm", "Örjan Ström, Svalöv", "Märta Lind, Höganäs",
              "Per Åkesson, Båstad", "Mikael Johansson, sekretariatet"]
    body = [Text(MARGIN + 10, 696 - 14 * i, p) for i, p in enumerate(people)]
    y = 610.0
    items = [
        ("1. Mötets öppnande", "Ordföranden öppnade mötet och hälsade alla välkomna."),
        ("2. Beredskap och civilt försvar",
         "Sammanfattning: Ärendet återkommer till styrelsen i april. Mötet beslutar att "
         "tacka för informationen."),
        ("3. Extern finansiering",
         "Sammanfattning: En tidsbegränsad projektanställning föreslås. Mötet beslutar att "
         "varje kommun utser en kontaktperson för projektet."),
    ]
    for heading, text in items:
        body.append(Text(MARGIN, y, heading, 11, True))
        y -= 16
        for line in wrap(text, 90):
            body.append(Text(MARGIN, y, line))
            y -= 13
        y -= 10
    add_text_page(pdf, title + body)
    page2 = [Text(MARGIN, 780, "4. Övriga frågor", 11, True)]
    for i, line in enumerate(wrap(
        "Vi behöver se över våra mötesdatum i april och maj. Sekretariatet återkommer med "
        "förslag på lösning. Mötet förklarades avslutat.", 90)):
        page2.append(Text(MARGIN, 764 - 13 * i, line))
    add_text_page(pdf, page2)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of *text* in points in the pages' font, as the page encodes it."""
    return font_data(bold).width(encode(text)) * size / 1000


def fit(text: str, size: float, bold: bool = False, width: float = A4[0] - 2 * MARGIN) -> list[str]:
    """*text* as lines no wider than *width*: broken at spaces, and inside a word
    (a hash, an address) only when the word alone is too wide."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        for piece in _pieces(word, size, bold, width):
            candidate = f"{line} {piece}" if line else piece
            if line and text_width(candidate, size, bold) > width:
                lines.append(line)
                line = piece
            else:
                line = candidate
    return [*lines, line]


def _pieces(word: str, size: float, bold: bool, width: float) -> list[str]:
    pieces = [""]
    for char in word:
        if pieces[-1] and text_width(pieces[-1] + char, size, bold) > width:
            pieces.append("")
        pieces[-1] += char
    return pieces
