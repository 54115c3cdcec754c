"""Intake of an uploaded protocol: check, normalize, add the signature page.

pikepdf rewrites the upload as one clean revision (active content removed,
form fields flattened) before anything is signed; the signature page and the
document-ID footer are drawn here, before the first signature, because a
visible change after a signature would invalidate it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import pikepdf
from pikepdf import Name

from signflow.core.ports import SignerBlock
from signflow.errors import UnsupportedDocument
from signflow.pdf.pages import A4, MARGIN, Text, add_footer, add_text_page

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
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}", code="unparsable") from None
    try:
        _check(pdf, max_pages)
    except BaseException:
        pdf.close()
        raise
    return pdf


def _check(pdf: pikepdf.Pdf, max_pages: int) -> None:
    if pdf.is_encrypted:
        raise UnsupportedDocument("the PDF is encrypted", code="encrypted")
    try:
        count = len(pdf.pages)
    except (pikepdf.PdfError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF's pages cannot be read: {exc}",
                                  code="unparsable") from None
    if count == 0:
        raise UnsupportedDocument("the PDF has no pages", code="no_pages")
    if count > max_pages:
        raise UnsupportedDocument(f"the PDF has more than {max_pages} pages", code="too_many_pages")
    if _is_signed(pdf):
        raise UnsupportedDocument("the PDF is already signed", code="already_signed")


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
    """Remove what could run or switch content on later: scripts, actions, forms, files."""
    root = pdf.Root
    if Name.AcroForm in root:
        pdf.flatten_annotations("all")
    for key in (Name.OpenAction, Name.AA, Name.AcroForm, Name.Perms):
        if key in root:
            del root[key]
    names = root.get(Name.Names)
    if names is not None:
        for key in (Name.JavaScript, Name.EmbeddedFiles):
            if key in names:
                del names[key]
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
                        f"{VERIFY_LABEL[language]}: {verify_url}")
        buf = io.BytesIO()
        pdf.remove_unreferenced_resources()
        pdf.save(buf, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.disable,
                 linearize=False, fix_metadata_version=True)
        return CleanDocument(buf.getvalue(), len(pdf.pages), tuple(fields))


def _signature_pages(
    pdf: pikepdf.Pdf, round_id: str, title: str, language: str,
    blocks: Sequence[SignerBlock], first_index: int,
) -> list[FieldPlacement]:
    fields: list[FieldPlacement] = []
    for start in range(0, len(blocks), BLOCKS_PER_PAGE):
        chunk = blocks[start:start + BLOCKS_PER_PAGE]
        page_index = first_index + start // BLOCKS_PER_PAGE
        items = [
            Text(MARGIN, 780, HEADINGS[language], 20, True),
            Text(MARGIN, 756, f"{DOC_LABEL[language]}: {title[:90]}", 10),
            Text(MARGIN, 742, f"{ID_LABEL[language]}: {round_id}", 10),
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
