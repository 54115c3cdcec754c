"""A signer's approval written as one small incremental update.

The prepared document already holds everything a signature needs: the empty
field (made when the seal certified it), the embedded font, the AcroForm with
its signature flags. So an approval only appends: the field again with /V and
its appearance, the appearance stream, the signature dictionary with a
reserved /Contents, the validation data (DSS) for this signature, a classic
cross-reference section and trailer. :mod:`signflow.pdf.rawpdf` reads just
the few objects we rewrite; nothing else of the document is parsed or
re-serialized, so the cost hardly grows with the document.

The update has the shape pyHanko's own signer writes, so its difference
analysis classes it as form filling under the certification (DocMDP 2); the
tests check that with pyHanko, adesverify and Poppler.

It is written in stages with typed results, as pyHanko's signer goes from
``PdfTBSDocument`` to ``PdfPostSignatureDocument``: :func:`locate_field`,
:func:`write_signature`, :func:`merge_dss`, :func:`write_trailer`,
:func:`to_be_signed`, :func:`embed_signature`. :func:`fill_signature_field` runs them.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec

from signflow.pdf.pages import EXTRA_CODES, encode, font_data, pdf_string, string_of
from signflow.pdf.rawpdf import Dict, RawPdf, RawPdfError, Ref

FONT_SIZE = 9
LEADING = 12
MARGIN_X = 12
BYTE_RANGE_WIDTH = 36  # "[0 a b c]" with room for 10-digit offsets
_P = ParamSpec("_P")


class ApprovalError(ValueError):
    """The document does not have the field or shape an approval needs."""


@dataclass
class Dss:
    """Validation data to embed with the signature (DER each)."""

    certs: Sequence[bytes] = ()
    ocsps: Sequence[bytes] = ()
    crls: Sequence[bytes] = ()


def _pdf_string(text: str) -> bytes:
    """A PDF text string: literal when ASCII, otherwise UTF-16BE with its mark."""
    if text.isascii() and text.isprintable():
        return pdf_string(text)
    return b"<feff" + text.encode("utf-16-be").hex().encode() + b">"


def _pdf_date(moment: datetime) -> bytes:
    return _pdf_string(moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ"))


#: The least a block's text is shrunk to fit its longest line (9 pt × 0.75: still
#: readable in print); a line longer still ends in "…".
MIN_SCALE = 0.75


def appearance(lines: Sequence[str], width: float, height: float,
               extended: bool = True) -> bytes:
    """Left-aligned lines in the page's embedded font, centred vertically, shrunk to
    fit, but never below :data:`MIN_SCALE`: a 200-character organisation had shrunk
    the whole block to 3 pt, unreadable; such a line is cut, with "…", instead (the
    whole value stays in the signature's /Name, the API and the trail).

    *extended*: the page's font has the letters of :data:`~signflow.pdf.pages.EXTRA`
    (documents prepared before it did print them as "?")."""
    font = font_data(False)

    def points(raw: bytes) -> float:
        return font.width(raw) * FONT_SIZE / 1000

    def in_font(line: str) -> bytes:
        raw = encode(line)
        return raw if extended else bytes(63 if b in EXTRA_CODES.values() else b for b in raw)

    room = width - 2 * MARGIN_X
    encoded = [in_font(line) for line in lines]
    longest = max((points(raw) for raw in encoded), default=0)
    scale = max(MIN_SCALE, min(1.0, room / longest)) if longest else 1.0
    for i, raw in enumerate(encoded):
        if points(raw) * scale > room:
            encoded[i] = font.cut(raw, room / scale * 1000 / FONT_SIZE)
    block = (len(encoded) - 1) * LEADING
    top = height / 2 + scale * (block / 2 - 3)
    ops = [b"q %.4f 0 0 %.4f %d %.2f cm BT /F1 %d Tf %d TL 0 0 Td"
           % (scale, scale, MARGIN_X, top, FONT_SIZE, LEADING)]
    for i, raw in enumerate(encoded):
        ops.append((b"T* " if i else b"") + string_of(raw) + b" Tj")
    ops.append(b"ET Q")
    return b" ".join(ops)


def _text(value: object) -> str:
    """A PDF text string (UTF-16BE with its mark, or PDFDocEncoding ~ Latin-1)."""
    if not isinstance(value, bytes):
        return ""
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be", errors="replace")
    return value.decode("latin-1")


def _font_ref(pdf: RawPdf, page: Dict, base_font: str) -> Ref:
    resources = pdf.resolve(page.get("/Resources"))
    fonts = pdf.resolve(resources.get("/Font")) if isinstance(resources, Dict) else None
    if isinstance(fonts, Dict):
        for ref in fonts.values():
            font = pdf.resolve(ref)
            if isinstance(ref, Ref) and isinstance(font, Dict) and \
                    font.get("/BaseFont") == "/" + base_font:
                return ref
    raise ApprovalError("the signature page does not carry the embedded font")


def _find_field(pdf: RawPdf, root: Dict, field_name: str) -> tuple[Ref, Dict]:
    acro = pdf.resolve(root.get("/AcroForm"))
    fields = pdf.resolve(acro.get("/Fields")) if isinstance(acro, Dict) else None
    for ref in fields if isinstance(fields, list) else []:
        candidate = pdf.resolve(ref)
        if isinstance(candidate, Dict) and _text(candidate.get("/T")) == field_name:
            if candidate.get("/FT") != "/Sig" or not isinstance(ref, Ref):
                raise ApprovalError(f"{field_name} is not a signature field")
            if "/V" in candidate:
                raise ApprovalError(f"{field_name} is already signed")
            return ref, candidate
    raise ApprovalError(f"the document has no field {field_name}")


def _field_size(pdf: RawPdf, field: Dict, field_name: str) -> tuple[float, float]:
    """Width and height of the field's widget, from its /Rect."""
    rect = pdf.resolve(field.get("/Rect"))
    if not (isinstance(rect, list) and len(rect) == 4 and
            all(isinstance(v, int | float) and not isinstance(v, bool) for v in rect)):
        raise ApprovalError(f"{field_name} has no usable /Rect")
    x1, y1, x2, y2 = (float(v) for v in rect)
    return abs(x2 - x1), abs(y2 - y1)


def _num(value: float) -> bytes:
    return (b"%d" % value) if value == int(value) else (b"%.3f" % value)


class Update:
    """The bytes of one incremental update, with the offsets and numbers of its objects."""

    def __init__(self, base: int, needs_newline: bool, next_free: int) -> None:
        self.base = base
        self.out = bytearray(b"\n" if needs_newline else b"")
        self.offsets: dict[Ref, int] = {}
        #: the number the next new object gets; the trailer's /Size once closed
        self.next_free = next_free

    @classmethod
    def after(cls, data: bytes, next_free: int) -> Update:
        """An empty update to append to *data*, numbering new objects from *next_free*."""
        return cls(len(data), not data.endswith(b"\n"), next_free)

    def new_ref(self) -> Ref:
        """A reference for one more object of this update."""
        self.next_free += 1
        return Ref(self.next_free - 1, 0)

    def obj(self, ref: Ref, body: bytes) -> int:
        """Append object *ref*; return where its body starts within the update."""
        self.offsets[ref] = self.base + len(self.out)
        self.out += b"%d %d obj\n" % (ref.num, ref.gen)
        start = len(self.out)
        self.out += body + b"\nendobj\n"
        return start

    def stream(self, ref: Ref, payload: bytes, entries: bytes = b"") -> None:
        self.obj(ref, b"<< " + entries + b"/Length %d >>\nstream\n" % len(payload)
                 + payload + b"\nendstream")

    def xref_and_trailer(self, trailer: bytes) -> None:
        start = self.base + len(self.out)
        refs = sorted(self.offsets, key=lambda r: r.num)
        self.out += b"xref\n"
        i = 0
        while i < len(refs):
            j = i
            while j + 1 < len(refs) and refs[j + 1].num == refs[j].num + 1:
                j += 1
            self.out += b"%d %d\n" % (refs[i].num, j - i + 1)
            for ref in refs[i:j + 1]:
                self.out += b"%010d %05d n\r\n" % (self.offsets[ref], ref.gen)
            i = j + 1
        self.out += b"trailer\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % start


@dataclass(frozen=True)
class FieldTarget:
    """The empty signature field an approval fills, and what its appearance needs."""

    #: the document catalog, rewritten when the DSS is new
    root_ref: Ref
    root: Dict
    #: the signature field (merged with its widget) as the document holds it
    field_ref: Ref
    field: Dict
    #: the widget's size in points, from its /Rect
    width: float
    height: float
    #: the embedded font on the field's page, which the appearance uses
    font: Ref
    #: the first free object number: the last trailer's /Size
    first_free: int
    #: that font's encoding has the extra letters (pages.EXTRA): not in documents
    #: prepared before it did
    extended: bool = True


def locate_field(pdf: RawPdf, field_name: str, font_name: str) -> FieldTarget:
    """Find the unsigned field *field_name*, its size, its page's font and the next number."""
    root_ref = pdf.trailer.get("/Root")
    root = pdf.resolve(root_ref)
    if not isinstance(root_ref, Ref) or not isinstance(root, Dict):
        raise ApprovalError("the document has no catalog")
    field_ref, field = _find_field(pdf, root, field_name)
    width, height = _field_size(pdf, field, field_name)
    page = pdf.resolve(field.get("/P"))
    if not isinstance(page, Dict):
        raise ApprovalError(f"{field_name} is on no page")
    font = _font_ref(pdf, page, font_name)
    size = pdf.trailer.get("/Size")
    if not isinstance(size, int) or size <= 0 or pdf.exists(size):
        raise ApprovalError("the trailer's /Size does not match the document's objects")
    font_dict = pdf.resolve(font)
    encoding = pdf.resolve(font_dict.get("/Encoding")) if isinstance(font_dict, Dict) else None
    extended = isinstance(encoding, Dict) and encoding.get("/Differences") is not None
    return FieldTarget(root_ref, root, field_ref, field, width, height, font, size, extended)


@dataclass(frozen=True)
class Placeholders:
    """The blanks of the signature dictionary, as offsets into the update."""

    #: the signature dictionary (the field's /V)
    signature: Ref
    #: the first of the BYTE_RANGE_WIDTH spaces that /ByteRange is written over
    byte_range_at: int
    #: the ``<`` of /Contents' hex string of zeros
    contents_at: int
    #: bytes reserved for the CMS; the hex string holds twice as many digits
    reserved: int

    @property
    def contents_end(self) -> int:
        """Just past the ``>`` of /Contents' hex string."""
        return self.contents_at + 2 * self.reserved + 2


_SIG_HEAD = b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange "


def write_signature(
    update: Update, target: FieldTarget, *, lines: Sequence[str], signer_name: str,
    reason: str, signed_at: datetime, reserved: int,
) -> Placeholders:
    """Append the appearance, the signature dictionary with blanks, and the field's /V."""
    ap_ref, sig_ref = update.new_ref(), update.new_ref()
    width, height = _num(target.width), _num(target.height)
    update.stream(ap_ref, appearance(lines, target.width, target.height, target.extended),
                  b"/Type /XObject /Subtype /Form /BBox [0 0 %s %s] "
                  b"/Resources << /Font << /F1 %s >> >> " % (width, height, target.font.pdf()))
    body_start = update.obj(sig_ref, b"".join([
        _SIG_HEAD, b" " * BYTE_RANGE_WIDTH, b" /Contents <", b"0" * (2 * reserved),
        b"> /M ", _pdf_date(signed_at), b" /Name ", _pdf_string(signer_name),
        b" /Reason ", _pdf_string(reason), b" >>"]))
    update.obj(target.field_ref, target.field.unparse(
        drop=("/V", "/AP"), add=b"/AP << /N %s >> /V %s" % (ap_ref.pdf(), sig_ref.pdf())))
    range_at = body_start + len(_SIG_HEAD)
    contents_at = range_at + BYTE_RANGE_WIDTH + len(b" /Contents ")
    return Placeholders(sig_ref, range_at, contents_at, reserved)


_DSS_KEYS = ("/Certs", "/OCSPs", "/CRLs")


@dataclass(frozen=True)
class DssAdditions:
    """What an approval adds to the document's DSS."""

    #: the DSS dictionary, rewritten; or new, and then linked from a rewritten catalog
    dss: Ref
    #: one new stream per item the DSS did not hold yet, in the order given
    certs: tuple[Ref, ...]
    ocsps: tuple[Ref, ...]
    crls: tuple[Ref, ...]


def _dss_held(pdf: RawPdf, old: object) -> tuple[dict[str, list[Ref]], set[bytes]]:
    """The DSS's arrays as they are, and the SHA-256 of every item in them."""
    arrays: dict[str, list[Ref]] = {}
    known: set[bytes] = set()
    for key in _DSS_KEYS:
        items = pdf.resolve(old.get(key)) if isinstance(old, Dict) else None
        arrays[key] = [item for item in items if isinstance(item, Ref)] \
            if isinstance(items, list) else []
        known.update(hashlib.sha256(pdf.stream_bytes(ref)).digest() for ref in arrays[key])
    return arrays, known


def merge_dss(pdf: RawPdf, update: Update, target: FieldTarget, dss: Dss) -> DssAdditions:
    """Grow the DSS by what it does not hold yet (told apart by the SHA-256 of the DER)."""
    old_ref = target.root.get("/DSS")
    old = pdf.resolve(old_ref)
    arrays, known = _dss_held(pdf, old)
    added: dict[str, list[Ref]] = {key: [] for key in _DSS_KEYS}
    for key, payloads in zip(_DSS_KEYS, (dss.certs, dss.ocsps, dss.crls), strict=True):
        for payload in payloads:
            digest = hashlib.sha256(payload).digest()
            if digest not in known:
                known.add(digest)
                added[key].append(ref := update.new_ref())
                update.stream(ref, payload)
    entries = b" ".join(key.encode() + b" [" + b" ".join(r.pdf() for r in refs + added[key])
                        + b"]" for key, refs in arrays.items() if refs + added[key])
    if isinstance(old_ref, Ref) and isinstance(old, Dict):
        dss_ref = old_ref
        update.obj(old_ref, old.unparse(drop=_DSS_KEYS, add=entries))
    else:
        dss_ref = update.new_ref()
        update.obj(dss_ref, b"<< " + entries + b" >>")
        update.obj(target.root_ref,
                   target.root.unparse(drop=("/DSS",), add=b"/DSS " + dss_ref.pdf()))
    return DssAdditions(dss_ref, *(tuple(added[key]) for key in _DSS_KEYS))


def write_trailer(pdf: RawPdf, update: Update) -> None:
    """Close the update: its xref section and a trailer chained to the last (same first /ID)."""
    ids = pdf.trailer.get("/ID")
    first_id = ids[0] if isinstance(ids, list) and ids and isinstance(ids[0], bytes) \
        else os.urandom(16)
    kept = b" ".join(k.encode() + b" " + pdf.trailer.raw[k] for k in ("/Root", "/Info")
                     if k in pdf.trailer.raw)
    update.xref_and_trailer(
        b"<< /Size %d %s /Prev %d /ID [<%s> <%s>] >>"
        % (update.next_free, kept, pdf.startxref, first_id.hex().encode(),
           os.urandom(16).hex().encode()))


@dataclass(frozen=True)
class ToBeSigned:
    """The document with its update closed and /ByteRange in place; only /Contents is blank."""

    #: the document as it was; the update is appended to it
    base: bytes
    #: the closed update, /ByteRange written, /Contents still zeros
    update: bytes
    #: where the blanks are within :attr:`update`
    placeholders: Placeholders
    #: ``(0, begin, end, rest)``: all of base + update but /Contents' hex string
    byte_range: tuple[int, int, int, int]
    #: SHA-256 of the bytes the byte range covers: what the CMS signs
    digest: bytes


def to_be_signed(base: bytes, update: Update, placeholders: Placeholders) -> ToBeSigned:
    """Write /ByteRange over its blank and digest everything but /Contents."""
    out, at = update.out, placeholders.byte_range_at
    begin = len(base) + placeholders.contents_at
    end = len(base) + placeholders.contents_end
    byte_range = (0, begin, end, len(base) + len(out) - end)
    written = b"[%d %d %d %d]" % byte_range
    if len(written) > BYTE_RANGE_WIDTH:
        raise ApprovalError("the document is too large for a signature here")
    filled = bytes(out[:at] + written.ljust(BYTE_RANGE_WIDTH) + out[at + BYTE_RANGE_WIDTH:])
    hasher = hashlib.sha256(base)
    hasher.update(filled[:placeholders.contents_at])
    hasher.update(filled[placeholders.contents_end:])
    return ToBeSigned(base, filled, placeholders, byte_range, hasher.digest())


def embed_signature(tbs: ToBeSigned, cms: bytes) -> bytes:
    """The signed document: *cms* (DER) written into /Contents, the rest of it zeros."""
    reserved = tbs.placeholders.reserved
    if len(cms) > reserved:
        raise ApprovalError(f"the signature needs {len(cms)} bytes; {reserved} reserved")
    digits = cms.hex().encode()
    at = tbs.placeholders.contents_at + 1
    return b"".join([tbs.base, tbs.update[:at], digits, tbs.update[at + len(digits):]])


def _as_approval_errors(fill: Callable[_P, bytes]) -> Callable[_P, bytes]:
    """The reader's complaints about the document, told as the approval's."""

    @functools.wraps(fill)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> bytes:
        try:
            return fill(*args, **kwargs)
        except RawPdfError as exc:
            raise ApprovalError(str(exc)) from exc

    return wrapped


@_as_approval_errors
def fill_signature_field(
    data: bytes, *, field_name: str, lines: Sequence[str], signer_name: str, reason: str,
    signed_at: datetime, dss: Dss, reserved: int, sign: Callable[[bytes], bytes],
    font_name: str,
) -> bytes:
    """Sign *field_name*: *sign* gets the SHA-256 of the byte ranges, returns the CMS (DER).

    The stages in order; the reader's :class:`RawPdfError` comes out as :class:`ApprovalError`.
    """
    pdf = RawPdf(data)
    target = locate_field(pdf, field_name, font_name)
    update = Update.after(data, target.first_free)
    blanks = write_signature(update, target, lines=lines, signer_name=signer_name,
                             reason=reason, signed_at=signed_at, reserved=reserved)
    merge_dss(pdf, update, target, dss)
    write_trailer(pdf, update)
    tbs = to_be_signed(data, update, blanks)
    return embed_signature(tbs, sign(tbs.digest))
