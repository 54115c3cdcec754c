"""Intake of an uploaded protocol: check, normalize, add the signature page.

pikepdf rewrites the upload as one clean revision (active content removed,
form fields flattened) before anything is signed; the signature page and the
document-ID footer are drawn here, before the first signature, because a
visible change after a signature would invalidate it.
"""

from __future__ import annotations

import base64
import io
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import pikepdf
from pikepdf import Name

from signflow.core.ports import SignerBlock
from signflow.errors import UnsupportedDocument
from signflow.pdf import hostile
from signflow.pdf.pages import (
    A4,
    MARGIN,
    Text,
    add_footer,
    add_text_page,
    decode,
    encode,
    fit,
    font_data,
)

BLOCKS_PER_PAGE = 5
BLOCK_HEIGHT = 128.0
FIELD_HEIGHT = 100.0
TOP = 700.0

HEADINGS = {"sv": "Underskrifter", "en": "Signatures"}
BLOCK_LABEL = {"sv": "Underskrift", "en": "Signature"}
DOC_LABEL = {"sv": "Dokument", "en": "Document"}
ID_LABEL = {"sv": "Dokument-ID", "en": "Document ID"}
VERIFY_LABEL = {"sv": "Verifiera", "en": "Verify"}


@dataclass(frozen=True)
class FieldPlacement:
    field_name: str
    page_index: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class CleanDocument:
    data: bytes
    page_count: int
    fields: tuple[FieldPlacement, ...]


def open_upload(data: bytes, *, max_bytes: int, max_pages: int) -> pikepdf.Pdf:
    """Open an upload or raise :class:`UnsupportedDocument` saying why not."""
    if len(data) > max_bytes:
        raise UnsupportedDocument(
            f"the file is larger than {max_bytes // (1024 * 1024)} MB", code="too_large")
    if b"%PDF-" not in data[:1024]:
        raise UnsupportedDocument("the file is not a PDF", code="not_pdf")
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise UnsupportedDocument("the PDF is encrypted", code="encrypted") from None
    except (pikepdf.PdfError, ValueError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {_why(exc)}",
                                  code="unparsable") from None
    # a PDF ends with %%EOF (readers look for it in the last 1024 bytes): a file cut
    # anywhere but after it has none, even where qpdf finds the objects all the same
    if b"%%EOF" not in data[-1024:] or "/Size" not in pdf.trailer or any(
            "can't find startxref" in w for w in pdf.get_warnings()):
        # qpdf rebuilt it from what was there: a file cut short may lack pages or text,
        # and what it writes then pyHanko cannot read (no /Size in its trailer)
        pdf.close()
        raise UnsupportedDocument("the PDF is damaged: its end is missing (was the file cut "
                                  "short?); save or export it again", code="unparsable")
    try:
        _check(pdf, max_pages)
    except BaseException:
        pdf.close()
        raise
    return pdf


#: Largest decoded stream, and all streams together, that an upload may hold.
MAX_STREAM_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
_FLATE = (Name.FlateDecode, Name.Fl)
_ASCII = (Name.ASCIIHexDecode, Name.AHx, Name.ASCII85Decode, Name.A85)
#: Image codecs are decoded by viewers into pixels, not by us.
_IMAGE = {Name.DCTDecode, Name.JPXDecode, Name.JBIG2Decode, Name.CCITTFaxDecode, Name.DCT,
          Name.CCF}


class _TooBig(Exception):
    pass


def _decoded_size(raw: bytes, stages: int, limit: int) -> int:
    """Size of *raw* after *stages* chained Flate filters, decoded in 1 MB chunks.

    Nothing larger than a chunk is ever held, and decoding stops as soon as the
    output (or the work at intermediate stages) passes *limit*.
    """
    decoders = [zlib.decompressobj() for _ in range(stages)]
    counts = [0] * stages

    def feed(level: int, data: bytes) -> None:
        decoder = decoders[level]
        # Small input slices keep unconsumed_tail (copied on every call) small.
        for start in range(0, len(data), 1 << 16):
            pending = data[start:start + (1 << 16)]
            while pending:
                out = decoder.decompress(pending, 1 << 20)
                pending = decoder.unconsumed_tail
                counts[level] += len(out)
                if counts[level] > limit:
                    raise _TooBig
                if level + 1 < stages and out:
                    feed(level + 1, out)
                if not out:
                    break
            if decoder.eof:
                return

    try:
        feed(0, raw)
    except _TooBig:
        return limit + 1
    return counts[-1]


def _shrink(data: bytes, name: pikepdf.Name) -> bytes:
    """Decode an ASCII filter (its output is smaller than its input)."""
    if name in (Name.ASCIIHexDecode, Name.AHx):
        text = bytes(c for c in data.split(b">")[0] if chr(c) in "0123456789abcdefABCDEF")
        return bytes.fromhex((text + b"0" * (len(text) % 2)).decode())
    body = data.strip()
    body = body[2:] if body.startswith(b"<~") else body
    return base64.a85decode(body.split(b"~>")[0] + b"~>", adobe=False, ignorechars=b" \t\r\n")


def _decoded_stream_size(stream: pikepdf.Stream, chain: list) -> int:
    raw = stream.read_raw_bytes()
    rest = list(chain)
    while rest and rest[0] in _ASCII:
        raw = _shrink(raw, rest.pop(0))
    if all(f in _FLATE for f in rest):
        return _decoded_size(raw, len(rest), MAX_STREAM_BYTES)
    # Another codec (LZW, RunLength…): let qpdf decode it here, in the limited child.
    return len(stream.read_bytes()) if not set(rest) & _IMAGE else 0


def _check_streams(pdf: pikepdf.Pdf) -> None:
    """Refuse decompression bombs before anything decodes them."""
    total = 0
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream):
            continue
        filters = obj.get(Name.Filter)
        chain = list(filters) if isinstance(filters, pikepdf.Array) else \
            ([filters] if filters is not None else [])
        if not chain:
            continue
        try:
            size = _decoded_stream_size(obj, chain)
        except (zlib.error, ValueError, pikepdf.PdfError):
            continue  # a broken stream is the reader's to judge, not a bomb
        total += size
        if size > MAX_STREAM_BYTES or total > MAX_TOTAL_BYTES:
            raise UnsupportedDocument("the PDF holds a stream that decompresses to more than "
                                      f"{MAX_STREAM_BYTES // (1024 * 1024)} MB",
                                      code="too_complex")


def _why(exc: BaseException) -> str:
    """qpdf's message without its internal stream names."""
    text = re.sub(r"^.*?(\(object \d+ \d+\))?: ", "", str(exc).split("\n")[0], count=1)
    return text[:200] or type(exc).__name__


def _check(pdf: pikepdf.Pdf, max_pages: int) -> None:
    if pdf.is_encrypted:
        raise UnsupportedDocument("the PDF is encrypted", code="encrypted")
    try:
        count = len(pdf.pages)
    except (pikepdf.PdfError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF's pages cannot be read: {_why(exc)}",
                                  code="unparsable") from None
    if count == 0:
        raise UnsupportedDocument("the PDF has no pages", code="no_pages")
    if count > max_pages:
        raise UnsupportedDocument(f"the PDF has more than {max_pages} pages", code="too_many_pages")
    if _is_signed(pdf):
        raise UnsupportedDocument("the PDF is already signed", code="already_signed")
    _check_streams(pdf)
    hostile.check(pdf)


def _is_signed(pdf: pikepdf.Pdf) -> bool:
    root = pdf.Root
    if Name.Perms in root:
        return True
    acro = root.get(Name.AcroForm)
    if acro is None:
        return False
    for field in acro.get(Name.Fields, []):
        if field.get(Name.FT) == Name.Sig and Name.V in field:
            return True
    return False


def _strip_active_content(pdf: pikepdf.Pdf) -> None:
    """Remove what could switch content on later: actions, forms, embedded files.

    JavaScript never gets here: :mod:`signflow.pdf.hostile` refuses it first.
    """
    root = pdf.Root
    if Name.AcroForm in root:
        pdf.flatten_annotations("all")
    for key in (Name.OpenAction, Name.AA, Name.AcroForm, Name.Perms):
        if key in root:
            del root[key]
    names = root.get(Name.Names)
    if names is not None and Name.EmbeddedFiles in names:
        del names[Name.EmbeddedFiles]
    for page in pdf.pages:
        if Name.AA in page.obj:
            del page.obj[Name.AA]
        annots = page.obj.get(Name.Annots)
        if annots is not None:
            page.obj[Name.Annots] = pikepdf.Array([a for a in annots if _harmless(a)])


def _harmless(annot: pikepdf.Object) -> bool:
    if not isinstance(annot, pikepdf.Dictionary) or Name.AA in annot:
        return False
    if annot.get(Name.Subtype) in (Name.Widget, Name.Screen, Name.Movie, Name.Sound,
                                   Name.FileAttachment, Name.RichMedia):
        return False
    action = annot.get(Name.A)
    return action is None or action.get(Name.S) in (Name.URI, Name.GoTo)


def warm() -> None:
    """Read the fonts and import the QR encoder once, in the sandbox's zygote, rather
    than in every intake child (fontTools alone is 77 modules: 50 ms a round)."""
    import segno  # noqa: F401

    font_data(False)
    font_data(True)


def prepare_clean(
    data: bytes, *, round_id: str, title: str, language: str, blocks: Sequence[SignerBlock],
    verify_url: str, max_bytes: int, max_pages: int,
) -> CleanDocument:
    """Normalize the upload and append the signature page(s); not yet signed."""
    pdf = open_upload(data, max_bytes=max_bytes, max_pages=max_pages)
    with pdf:
        _strip_active_content(pdf)
        original_pages = len(pdf.pages)
        fields = _signature_pages(pdf, round_id, title, language, blocks, original_pages)
        add_footer(pdf, f"{ID_LABEL[language]}: {round_id}   ·   "
                        f"{VERIFY_LABEL[language]}: {verify_url}",
                   qr_payload=f"{verify_url}?document={round_id}")
        buf = io.BytesIO()
        # Streams are copied as they are: the bomb check above has measured them,
        # and nothing here needs them decoded.
        pdf.save(buf, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none,
                 object_stream_mode=pikepdf.ObjectStreamMode.disable, linearize=False,
                 fix_metadata_version=True)
        return CleanDocument(buf.getvalue(), len(pdf.pages), tuple(fields))


#: The most lines the document's title takes on the signature page (the first
#: block begins below them; a title of 300 characters needs about three).
TITLE_LINES = 3


def title_lines(text: str, size: float = 10) -> list[str]:
    """*text* in lines inside the margins, at most :data:`TITLE_LINES`, the last
    ending in "…" when the title is longer still (it was cut at 90 characters, past
    the right margin, with no mark that it had been)."""
    width = A4[0] - 2 * MARGIN
    lines = fit(text, size, width=width)
    if len(lines) <= TITLE_LINES:
        return lines
    last = font_data(False).cut(encode(lines[TITLE_LINES - 1]), width * 1000 / size)
    return [*lines[:TITLE_LINES - 1], decode(last)]


def _signature_pages(
    pdf: pikepdf.Pdf, round_id: str, title: str, language: str,
    blocks: Sequence[SignerBlock], first_index: int,
) -> list[FieldPlacement]:
    fields: list[FieldPlacement] = []
    heading = title_lines(f"{DOC_LABEL[language]}: {title}")  # the same on every page
    for start in range(0, len(blocks), BLOCKS_PER_PAGE):
        chunk = blocks[start:start + BLOCKS_PER_PAGE]
        page_index = first_index + start // BLOCKS_PER_PAGE
        items = [
            Text(MARGIN, 780, HEADINGS[language], 20, True),
            *(Text(MARGIN, 756 - 12 * n, line, 10) for n, line in enumerate(heading)),
            Text(MARGIN, 742 - 12 * (len(heading) - 1), f"{ID_LABEL[language]}: {round_id}", 10),
        ]
        frames = []
        for i, block in enumerate(chunk):
            top = TOP - i * BLOCK_HEIGHT
            items.append(Text(MARGIN, top, f"{BLOCK_LABEL[language]} {block.position}"
                                           f" – {block.role_label}", 11, True))
            y1 = int(top - 8 - FIELD_HEIGHT)
            box = (int(MARGIN), y1, int(A4[0] - MARGIN), int(top - 8))
            frames.append(box)
            fields.append(FieldPlacement(block.field_name, page_index, box))
        frame_ops = b"0.6 G 0.5 w " + b" ".join(
            f"{x1} {y1} {x2 - x1} {y2 - y1} re S".encode() for x1, y1, x2, y2 in frames)
        add_text_page(pdf, items, extra_ops=frame_ops)
    return fields
