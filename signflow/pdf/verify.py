"""Verification of a signed PDF into a frozen report.

Difference analysis is never skipped: it is what catches content added or
switched on after a signature (shadow attacks).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

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
    #: PAdES baseline level reached: B-B, B-T, B-LT or B-LTA.
    pades_level: str | None = None
    #: ETSI EN 319 102-1 long-term (LTA) validation result at the validation
    #: time, from the file's own validation data (nothing fetched): PASSED, or
    #: INDETERMINATE/FAILED with the sub-indication.
    ades_indication: str | None = None
    #: The identity provider's evidence carried in the signature, as checked.
    evidence: EvidenceReport | None = None


@dataclass(frozen=True)
class EvidenceReport:
    """The BankID (or other provider) evidence inside an approval signature."""

    provider: str | None
    order_ref: str | None
    completed_at: str | None
    #: Hash of the prepared document the person approved, per the evidence.
    document_sha256: str | None
    #: That hash is the hash of this file's prepared (certified) revision.
    matches_document: bool
    #: The provider's XML signature verifies and covers that hash;
    #: None when no provider root is configured to check it against.
    provider_signature_valid: bool | None
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
        for sig in out["signatures"]:
            sig["problems"] = list(sig["problems"])
            if sig["evidence"]:
                sig["evidence"]["problems"] = list(sig["evidence"]["problems"])
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


def verify_pdf(
    data: bytes, trust_roots: Sequence[x509.Certificate],
    provider_roots: Sequence[x509.Certificate] = (), *, at: datetime | None = None,
) -> VerificationReport:
    """Judge every signature in *data* against *trust_roots*.

    *provider_roots* are the roots the identity provider's own signatures
    (BankID's XML) must chain to; without them that check reports ``None``.
    """
    sha = hashlib.sha256(data).hexdigest()
    if b"%PDF-" not in data[:1024]:
        raise UnsupportedDocument("the file is not a PDF", code="not_pdf")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        encrypted = reader.encrypted
    except (PdfError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}", code="unparsable") from None
    if encrypted:
        raise UnsupportedDocument("the PDF is encrypted", code="encrypted")
    try:
        sigs = list(reader.embedded_signatures)
    except Exception as exc:  # a PDF whose signature dictionaries are broken: a verdict
        return VerificationReport(
            valid=False, signatures=(), sha256=sha,
            problems=(f"a signature in the file is malformed and cannot be checked: {exc}",))
    roots = [asn1_cert(c) for c in trust_roots]
    context = _FileContext(data, sigs, list(provider_roots), "/DSS" in reader.root, at)
    reports = tuple(_judge(sig, roots, context) for sig in sigs)
    problems: list[str] = []
    if not reports:
        problems.append("the file has no signatures")
    return VerificationReport(
        valid=bool(reports) and all(r.valid for r in reports),
        signatures=reports, problems=tuple(problems), sha256=sha,
    )


def verify_pdf_der(
    data: bytes, *, roots_der: Sequence[bytes], provider_roots_der: Sequence[bytes] = (),
    at: datetime | None = None,
) -> VerificationReport:
    """:func:`verify_pdf` with DER roots (for the isolated child process)."""
    load = x509.load_der_x509_certificate
    return verify_pdf(data, [load(d) for d in roots_der], [load(d) for d in provider_roots_der],
                      at=at)


def verify_isolated(
    data: bytes, trust_roots: Sequence[x509.Certificate],
    provider_roots: Sequence[x509.Certificate] = (), *, at: datetime | None = None,
) -> VerificationReport:
    """:func:`verify_pdf` in a child process with memory, CPU and time limits."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow.pdf import isolate

    report = isolate.run(
        "verify", data, roots_der=[c.public_bytes(Encoding.DER) for c in trust_roots],
        provider_roots_der=[c.public_bytes(Encoding.DER) for c in provider_roots], at=at)
    assert isinstance(report, VerificationReport)
    return report


@dataclass
class _FileContext:
    """What judging one signature needs to know about the whole file."""

    data: bytes
    sigs: list
    provider_roots: list
    has_dss: bool
    #: Validation time (None: now).
    at: datetime | None = None

    def prepared_sha256(self) -> str | None:
        """Hash of the certified revision: the document every signer approved."""
        for sig in self.sigs:
            if sig.sig_object_type != "/DocTimeStamp" and sig.docmdp_level is not None:
                br = list(sig.byte_range)
                return hashlib.sha256(self.data[:br[2] + br[3]]).hexdigest()
        return None

    def level(self, sig, has_timestamp: bool) -> str:
        end = sum(list(sig.byte_range)[2:4])
        later_doc_ts = any(s.sig_object_type == "/DocTimeStamp"
                           and sum(list(s.byte_range)[2:4]) > end for s in self.sigs)
        if not has_timestamp:
            return "B-B"
        if later_doc_ts and self.has_dss:
            return "B-LTA"
        return "B-LT" if self.has_dss else "B-T"


def _context(roots: list, at: datetime | None = None) -> ValidationContext:
    return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail",
                             moment=at)


def _ades_lta(sig, roots: list, at: datetime | None) -> str:
    """AdES long-term validation from the file's own validation data only.

    Nothing is fetched: a hostile file must not make the verifier call URLs.
    """
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import (
        REQUIRE_REVINFO,
        CertRevTrustPolicy,
        FreshnessReqType,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager

    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=roots),
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO, freshness=None,
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION))
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)),
        # No second difference analysis: validate_pdf_signature has judged the
        # changes after each signature already. With a policy here, pyHanko's
        # evidence-record pass re-analyses every revision for every signature
        # (25 analyses for a round of three, most of the time and memory).
        diff_policy=None)
    when = at or datetime.now(UTC)
    timing = ValidationTimingInfo(when, when, point_in_time_validation=False)
    result = asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))
    indication = result.ades_subindic
    if indication is None:
        return "UNKNOWN"
    name = type(indication).__name__.removeprefix("AdES").upper()
    detail = getattr(indication, "name", str(indication))
    return "PASSED" if name == "PASSED" else f"{name}:{detail}"


def _judge(sig, roots: list, context: _FileContext) -> SignatureReport:
    field = str(sig.field_name)
    kind = "timestamp" if sig.sig_object_type == "/DocTimeStamp" else (
        "certification" if sig.docmdp_level is not None else "approval")
    try:
        if kind == "timestamp":
            return _judge_timestamp(sig, field, roots, context.at)
        return _judge_signature(sig, field, kind, roots, context)
    except Exception as exc:  # a hostile file must yield a verdict, never a crash
        log.info("signature %s could not be validated: %s", field, exc)
        return SignatureReport(field=field, kind=kind, signer="", signer_subject="",
                               signing_time=None, timestamp_time=None, intact=False,
                               trusted=False, modification_level=None, coverage=None,
                               docmdp_ok=None, transaction_id=None, valid=False,
                               problems=(f"the signature cannot be validated: {exc}",))
    finally:
        _forget_revisions(sig.reader)


def _forget_revisions(reader) -> None:
    """Drop the objects the difference analysis cached per revision in *reader*.

    pyHanko keeps a resolver per revision, each caching the objects it read;
    judging five signatures of a 1000-page round piles up about 30 MB of them.
    Dropping those after each signature keeps the peak within the memory
    goal.  The resolvers themselves stay, with their maps of which objects
    refer to which: those cost most of the analysis to build (about 1.5 s of
    9 s on 1000 pages) and little memory to keep.  The attributes are
    pyHanko's own; if they are renamed, we merely keep more.
    """
    resolvers = getattr(reader, "_historical_resolver_cache", None)
    if isinstance(resolvers, dict):
        for resolver in resolvers.values():
            cache = getattr(resolver, "cache", None)
            if isinstance(cache, dict):
                cache.clear()


def _common_problems(status, trusted: bool) -> list[str]:
    problems = []
    if not status.intact:
        problems.append("the signed content has changed")
    elif not status.valid:
        problems.append("the signature value does not verify")
    if not trusted:
        problems.append("the certificate does not chain to a trusted root")
    level = status.modification_level
    if level is None or level.name not in ACCEPTABLE_LEVELS:
        problems.append("the document was changed after signing in a way that is not allowed")
    if status.docmdp_ok is False:
        problems.append("later changes break the document's certification (DocMDP)")
    return problems


def _judge_signature(sig, field: str, kind: str, roots: list,
                     context: _FileContext) -> SignatureReport:
    status = validate_pdf_signature(sig, signer_validation_context=_context(roots, context.at))
    ades = _ades_lta(sig, roots, context.at) if context.has_dss else None
    # Long-term validation places the signature in time (its timestamp, the CRLs
    # embedded with it): a per-act certificate that has since expired still holds.
    trusted = bool(status.trusted) or ades == "PASSED"
    problems = _common_problems(status, trusted)
    ts = status.timestamp_validity
    if ts is not None and not (ts.intact and ts.valid):
        problems.append("the signature's timestamp does not verify")
    tx_id = _transaction_id(status.signing_cert)
    evidence = _judge_evidence(sig, context, tx_id)
    if evidence is not None:
        problems.extend(evidence.problems)
    level = status.modification_level
    return SignatureReport(
        pades_level=context.level(sig, ts is not None), evidence=evidence, ades_indication=ades,
        field=field, kind=kind, signer=_cn(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=_iso(status.signer_reported_dt),
        timestamp_time=_iso(ts.timestamp) if ts else None,
        intact=bool(status.intact and status.valid), trusted=trusted,
        modification_level=level.name if level else None,
        coverage=status.coverage.name if status.coverage else None,
        docmdp_ok=status.docmdp_ok, transaction_id=tx_id,
        valid=not problems, problems=tuple(problems),
    )


def _judge_timestamp(sig, field: str, roots: list, at: datetime | None) -> SignatureReport:
    status = validate_pdf_timestamp(sig, validation_context=_context(roots, at))
    problems = _common_problems(status, bool(status.trusted))
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


def _judge_evidence(sig, context: _FileContext, tx_id: str | None) -> EvidenceReport | None:
    """Check the provider evidence in *sig* against this file and the provider's root."""
    from signflow.adapters.evidence_checks import CHECKS
    from signflow.pdf.evidence import read_evidence

    ev = read_evidence(sig.signer_info)
    if ev is None:
        return None
    problems: list[str] = []
    if ev.get("_unreadable"):
        return EvidenceReport(None, None, None, None, False, False,
                              ("the identity evidence in the signature cannot be read",))
    claimed = ev.get("documentSha256")
    matches = claimed is not None and claimed == context.prepared_sha256()
    if not matches:
        problems.append("the identity evidence is for another document")
    if tx_id is not None and ev.get("orderRef") != tx_id:
        problems.append("the identity evidence names another transaction than the certificate")
    valid: bool | None = None
    check = CHECKS.get(str(ev.get("providerId") or "bankid"))
    if context.provider_roots and check is not None:
        found = check(str(ev.get("signature") or ""), context.provider_roots,
                      str(ev.get("orderRef") or ""))
        expected = base64.b64encode(bytes.fromhex(claimed)).decode() if claimed else None
        valid = found.valid and found.non_visible_b64 == expected
        if not valid:
            problems.append("the identity provider's signature does not verify or does not "
                            "cover this document")
    return EvidenceReport(
        provider=ev.get("provider"), order_ref=ev.get("orderRef"),
        completed_at=ev.get("completedAt"), document_sha256=claimed,
        matches_document=matches, provider_signature_valid=valid, problems=tuple(problems))
