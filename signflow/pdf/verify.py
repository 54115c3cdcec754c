"""Verification of a signed PDF into a frozen report.

Difference analysis is never skipped: it is what catches content added or
switched on after a signature (shadow attacks).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext

from signflow.errors import UnsupportedDocument
from signflow.pdf.keys import asn1_cert
from signflow.pdf.pki import OID_TRANSACTION_ID

log = logging.getLogger(__name__)
#: Modification levels after a signature that leave it valid.
ACCEPTABLE_LEVELS = ("NONE", "LTA_UPDATES", "FORM_FILLING")


@dataclass(frozen=True)
class SignatureReport:
    """One signature (or document timestamp) of the file, as judged."""

    #: Name of the signature field.
    field: str
    #: ``certification``, ``approval`` or ``timestamp``.
    kind: str
    #: Common name of the signing certificate (the signer, the seal, or the TSA).
    signer: str
    #: Full subject of the signing certificate.
    signer_subject: str
    #: Signing time claimed in the signature (RFC 3339) or None.
    signing_time: str | None
    #: Time of the RFC 3161 timestamp on the signature (or of the document timestamp).
    timestamp_time: str | None
    #: The signed bytes are unchanged and the cryptography checks out.
    intact: bool
    #: The certificate chains to a trust anchor.
    trusted: bool
    #: Modification level of the document after this signature (pyHanko's name).
    modification_level: str | None
    #: How much of the file the signature covers.
    coverage: str | None
    #: Later changes are allowed by the certification (DocMDP) level.
    docmdp_ok: bool | None
    #: BankID orderRef carried in the signer's certificate (Transaktions-ID).
    transaction_id: str | None
    #: The bottom line for this signature.
    valid: bool
    #: Why it is not valid, in words.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerificationReport:
    """The verdict on a whole file."""

    #: True only when the file has signatures and every one of them is valid.
    valid: bool
    signatures: tuple[SignatureReport, ...]
    #: File-level findings.
    problems: tuple[str, ...]
    #: SHA-256 of the file that was checked.
    sha256: str

    def to_dict(self) -> dict:
        out = asdict(self)
        out["problems"] = list(self.problems)
        out["signatures"] = [dict(s, problems=list(s["problems"])) for s in out["signatures"]]
        return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _cn(cert: asn1_x509.Certificate) -> str:
    return str(cert.subject.native.get("common_name", "")) or cert.subject.human_friendly


def _transaction_id(cert: asn1_x509.Certificate) -> str | None:
    try:
        parsed = x509.load_der_x509_certificate(cert.dump())
        ext = parsed.extensions.get_extension_for_oid(OID_TRANSACTION_ID).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    if len(raw) >= 2 and raw[0] == 0x0C and raw[1] == len(raw) - 2:
        return raw[2:].decode("utf-8", "replace")
    return None


def verify_pdf(data: bytes, trust_roots: Sequence[x509.Certificate]) -> VerificationReport:
    """Judge every signature in *data* against *trust_roots*."""
    sha = hashlib.sha256(data).hexdigest()
    if b"%PDF-" not in data[:1024]:
        raise UnsupportedDocument("the file is not a PDF", code="not_pdf")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}", code="unparsable") from None
    if reader.encrypted:
        raise UnsupportedDocument("the PDF is encrypted", code="encrypted")
    roots = [asn1_cert(c) for c in trust_roots]
    reports = tuple(_judge(sig, roots) for sig in sigs)
    problems: list[str] = []
    if not reports:
        problems.append("the file has no signatures")
    return VerificationReport(
        valid=bool(reports) and all(r.valid for r in reports),
        signatures=reports, problems=tuple(problems), sha256=sha,
    )


def verify_pdf_der(data: bytes, *, roots_der: Sequence[bytes]) -> VerificationReport:
    """:func:`verify_pdf` with DER roots (for the isolated child process)."""
    return verify_pdf(data, [x509.load_der_x509_certificate(d) for d in roots_der])


def verify_isolated(data: bytes, trust_roots: Sequence[x509.Certificate]) -> VerificationReport:
    """:func:`verify_pdf` in a child process with memory, CPU and time limits."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow.pdf import isolate

    report = isolate.run("verify", data, roots_der=[c.public_bytes(Encoding.DER)
                                                    for c in trust_roots])
    assert isinstance(report, VerificationReport)
    return report


def _context(roots: list) -> ValidationContext:
    return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")


def _judge(sig, roots: list) -> SignatureReport:
    field = str(sig.field_name)
    kind = "timestamp" if sig.sig_object_type == "/DocTimeStamp" else (
        "certification" if sig.docmdp_level is not None else "approval")
    try:
        if kind == "timestamp":
            return _judge_timestamp(sig, field, roots)
        return _judge_signature(sig, field, kind, roots)
    except Exception as exc:  # a hostile file must yield a verdict, never a crash
        log.info("signature %s could not be validated: %s", field, exc)
        return SignatureReport(field=field, kind=kind, signer="", signer_subject="",
                               signing_time=None, timestamp_time=None, intact=False,
                               trusted=False, modification_level=None, coverage=None,
                               docmdp_ok=None, transaction_id=None, valid=False,
                               problems=(f"the signature cannot be validated: {exc}",))


def _common_problems(status) -> list[str]:
    problems = []
    if not status.intact:
        problems.append("the signed content has changed")
    elif not status.valid:
        problems.append("the signature value does not verify")
    if not status.trusted:
        problems.append("the certificate does not chain to a trusted root")
    level = status.modification_level
    if level is None or level.name not in ACCEPTABLE_LEVELS:
        problems.append("the document was changed after signing in a way that is not allowed")
    if status.docmdp_ok is False:
        problems.append("later changes break the document's certification (DocMDP)")
    return problems


def _judge_signature(sig, field: str, kind: str, roots: list) -> SignatureReport:
    vc = _context(roots)
    status = validate_pdf_signature(sig, signer_validation_context=vc,
                                    ts_validation_context=_context(roots))
    problems = _common_problems(status)
    ts = status.timestamp_validity
    if ts is not None and not (ts.intact and ts.valid):
        problems.append("the signature's timestamp does not verify")
    level = status.modification_level
    return SignatureReport(
        field=field, kind=kind, signer=_cn(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=_iso(status.signer_reported_dt),
        timestamp_time=_iso(ts.timestamp) if ts else None,
        intact=bool(status.intact and status.valid), trusted=bool(status.trusted),
        modification_level=level.name if level else None,
        coverage=status.coverage.name if status.coverage else None,
        docmdp_ok=status.docmdp_ok, transaction_id=_transaction_id(status.signing_cert),
        valid=bool(status.bottom_line) and not problems, problems=tuple(problems),
    )


def _judge_timestamp(sig, field: str, roots: list) -> SignatureReport:
    status = validate_pdf_timestamp(sig, validation_context=_context(roots))
    problems = _common_problems(status)
    level = status.modification_level
    return SignatureReport(
        field=field, kind="timestamp", signer=_cn(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly, signing_time=None,
        timestamp_time=_iso(status.timestamp), intact=bool(status.intact and status.valid),
        trusted=bool(status.trusted), modification_level=level.name if level else None,
        coverage=status.coverage.name if status.coverage else None,
        docmdp_ok=status.docmdp_ok, transaction_id=None,
        valid=not problems, problems=tuple(problems),
    )
