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
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from signflow.pdf.pages import font_data, pdf_string
from signflow.pdf.rawpdf import Dict, RawPdf, RawPdfError, Ref

FONT_SIZE = 9
LEADING = 12
MARGIN_X = 12
BYTE_RANGE_WIDTH = 36  # "[0 a b c]" with room for 10-digit offsets


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


def appearance(lines: Sequence[str], width: float, height: float) -> bytes:
    """Left-aligned lines in the embedded WinAnsi font, centred vertically, shrunk to fit."""
    widths = font_data(False).widths
    encoded = [line.encode("cp1252", errors="replace") for line in lines]
    longest = max((sum(widths[c - 32] if 32 <= c < 256 else 500 for c in raw)
                   for raw in encoded), default=0) * FONT_SIZE / 1000
    scale = min(1.0, (width - 2 * MARGIN_X) / longest) if longest else 1.0
    block = (len(lines) - 1) * LEADING
    top = height / 2 + scale * (block / 2 - 3)
    ops = [b"q %.4f 0 0 %.4f %d %.2f cm BT /F1 %d Tf %d TL 0 0 Td"
           % (scale, scale, MARGIN_X, top, FONT_SIZE, LEADING)]
    for i, line in enumerate(lines):
        ops.append((b"T* " if i else b"") + pdf_string(line) + b" Tj")
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


class _Update:
    """The bytes of one incremental update, with the offsets of its objects."""

    def __init__(self, base: int, needs_newline: bool) -> None:
        self.base = base
        self.out = bytearray(b"\n" if needs_newline else b"")
        self.offsets: dict[Ref, int] = {}

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


def _as_approval_errors(fill: Callable[..., bytes]) -> Callable[..., bytes]:
    """The reader's complaints about the document, told as the approval's."""

    @functools.wraps(fill)
    def wrapped(*args, **kwargs) -> bytes:
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
    """Sign *field_name*: *sign* gets the SHA-256 of the byte ranges, returns the CMS (DER)."""
    pdf = RawPdf(data)
    root_ref = pdf.trailer.get("/Root")
    root = pdf.resolve(root_ref)
    if not isinstance(root_ref, Ref) or not isinstance(root, Dict):
        raise ApprovalError("the document has no catalog")
    target_ref, target = _find_field(pdf, root, field_name)
    rect = pdf.resolve(target.get("/Rect"))
    if not (isinstance(rect, list) and len(rect) == 4 and
            all(isinstance(v, int | float) and not isinstance(v, bool) for v in rect)):
        raise ApprovalError(f"{field_name} has no usable /Rect")
    x1, y1, x2, y2 = (float(v) for v in rect)
    width, height = abs(x2 - x1), abs(y2 - y1)
    page = pdf.resolve(target.get("/P"))
    if not isinstance(page, Dict):
        raise ApprovalError(f"{field_name} is on no page")
    font = _font_ref(pdf, page, font_name)
    size = pdf.trailer.get("/Size")
    if not isinstance(size, int) or size <= 0 or pdf.exists(size):
        raise ApprovalError("the trailer's /Size does not match the document's objects")
    new = (Ref(n, 0) for n in itertools.count(size))
    update = _Update(len(data), not data.endswith(b"\n"))

    # appearance and signature dictionary
    ap_ref, sig_ref = next(new), next(new)
    update.stream(ap_ref, appearance(lines, width, height),
                  b"/Type /XObject /Subtype /Form /BBox [0 0 %s %s] "
                  b"/Resources << /Font << /F1 %s >> >> " % (_num(width), _num(height), font.pdf()))
    contents = b"<" + b"0" * (2 * reserved) + b">"
    head = b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange "
    body_start = update.obj(sig_ref, b"".join([
        head, b" " * BYTE_RANGE_WIDTH, b" /Contents ", contents,
        b" /M ", _pdf_date(signed_at), b" /Name ", _pdf_string(signer_name),
        b" /Reason ", _pdf_string(reason), b" >>"]))
    range_at = body_start + len(head)
    contents_at = range_at + BYTE_RANGE_WIDTH + len(b" /Contents ")

    # the field, now with its value and appearance
    update.obj(target_ref, target.unparse(
        drop=("/V", "/AP"), add=b"/AP << /N %s >> /V %s" % (ap_ref.pdf(), sig_ref.pdf())))

    # validation data: the DSS grows by what it does not hold yet
    old_ref = root.get("/DSS")
    old = pdf.resolve(old_ref)
    arrays: dict[str, list[bytes]] = {}
    known: set[bytes] = set()
    for key in ("/Certs", "/OCSPs", "/CRLs"):
        items = pdf.resolve(old.get(key)) if isinstance(old, Dict) else None
        arrays[key] = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Ref):
                arrays[key].append(item.pdf())
                known.add(hashlib.sha256(pdf.stream_bytes(item)).digest())
    for key, payloads in (("/Certs", dss.certs), ("/OCSPs", dss.ocsps), ("/CRLs", dss.crls)):
        for payload in payloads:
            digest = hashlib.sha256(payload).digest()
            if digest not in known:
                known.add(digest)
                ref = next(new)
                update.stream(ref, payload)
                arrays[key].append(ref.pdf())
    entries = b" ".join(k.encode() + b" [" + b" ".join(v) + b"]" for k, v in arrays.items() if v)
    if isinstance(old_ref, Ref) and isinstance(old, Dict):
        update.obj(old_ref, old.unparse(drop=("/Certs", "/OCSPs", "/CRLs"), add=entries))
    else:
        dss_ref = next(new)
        update.obj(dss_ref, b"<< " + entries + b" >>")
        update.obj(root_ref, root.unparse(drop=("/DSS",), add=b"/DSS " + dss_ref.pdf()))

    ids = pdf.trailer.get("/ID")
    first_id = ids[0] if isinstance(ids, list) and ids and isinstance(ids[0], bytes) \
        else os.urandom(16)
    kept = b" ".join(k.encode() + b" " + pdf.trailer.raw[k] for k in ("/Root", "/Info")
                     if k in pdf.trailer.raw)
    update.xref_and_trailer(
        b"<< /Size %d %s /Prev %d /ID [<%s> <%s>] >>"
        % (next(new).num, kept, pdf.startxref, first_id.hex().encode(),
           os.urandom(16).hex().encode()))

    out = update.out
    begin = len(data) + contents_at
    end = begin + len(contents)
    total = len(data) + len(out)
    byte_range = b"[0 %d %d %d]" % (begin, end, total - end)
    if len(byte_range) > BYTE_RANGE_WIDTH:
        raise ApprovalError("the document is too large for a signature here")
    out[range_at:range_at + BYTE_RANGE_WIDTH] = byte_range.ljust(BYTE_RANGE_WIDTH)
    hasher = hashlib.sha256(data)
    hasher.update(out[:contents_at])
    hasher.update(out[contents_at + len(contents):])
    signature = sign(hasher.digest())
    if 2 * len(signature) > 2 * reserved:
        raise ApprovalError(f"the signature needs {len(signature)} bytes; {reserved} reserved")
    out[contents_at + 1:contents_at + 1 + 2 * len(signature)] = signature.hex().encode()
    return data + bytes(out)


def _num(value: float) -> bytes:
    return (b"%d" % value) if value == int(value) else (b"%.3f" % value)
