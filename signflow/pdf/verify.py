"""Verification of a signed PDF into a frozen report.

Difference analysis is never skipped: it is what catches content added or
switched on after a signature (shadow attacks).

Every signature, and the file as a whole, gets an ETSI EN 319 102-1 main
indication with its sub-indication where the standard names one:
TOTAL-FAILED for broken cryptography, changed content, a change after signing
that is not allowed, a DocMDP breach, a timestamp that does not verify or a
problem with the identity evidence; INDETERMINATE for an intact signature whose
chain reaches no known trust anchor (NO_CERTIFICATE_CHAIN_FOUND) or cannot be
placed in time; TOTAL-PASSED otherwise.  A file without signatures gets no
indication at all: there is nothing to judge (callers call it unusable input).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import urlsplit

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import ocsp
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext

from signflow.errors import UnsupportedDocument
from signflow.pdf import trail_mark
from signflow.pdf.keys import asn1_cert
from signflow.pdf.pki import OID_TRANSACTION_ID
from signflow.pdf.trail_mark import TrailReport
from signflow.pdf.verify_evidence import EvidenceReport, judge_evidence

log = logging.getLogger(__name__)
#: Modification levels after a signature that leave it valid.
ACCEPTABLE_LEVELS = ("NONE", "LTA_UPDATES", "FORM_FILLING")
#: ETSI EN 319 102-1 main indications.
TOTAL_PASSED, INDETERMINATE, TOTAL_FAILED = "TOTAL-PASSED", "INDETERMINATE", "TOTAL-FAILED"
_RANK = {TOTAL_PASSED: 0, INDETERMINATE: 1, TOTAL_FAILED: 2}
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
#: Where a signflow service publishes its trust anchors, under its base URL.
TRUST_ANCHORS_PATH = "/api/v1/trust-anchors"


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
    #: ETSI EN 319 102-1 main indication: TOTAL-PASSED, TOTAL-FAILED or
    #: INDETERMINATE; ``valid`` is true exactly when it is TOTAL-PASSED.
    indication: str = TOTAL_FAILED
    #: The standard's sub-indication (HASH_FAILURE, SIG_CRYPTO_FAILURE,
    #: FORMAT_FAILURE, REVOKED, NO_CERTIFICATE_CHAIN_FOUND…); None when passed,
    #: and when the standard has no name for the failure (a change after
    #: signing that is not allowed, a DocMDP breach, an evidence problem).
    sub_indication: str | None = None
    #: Where the service that issued the signing certificate publishes its
    #: trust anchors, read from the certificate's CRL pointer; given when the
    #: chain reaches no known anchor.  It comes from the file: a hint, no proof.
    trust_anchors_url: str | None = None
    #: The signer's role as the signature page names it above this field
    #: ("Ordförande", "Justerare"); the seal's certification covers that page.
    #: None when the page names none (a file signflow did not prepare).
    role: str | None = None


@dataclass(frozen=True)
class UnsignedField:
    """A signature field with no signature in it."""

    #: Name of the signature field (``Underskrift3``).
    field: str
    #: The role the signature page names for it, as :attr:`SignatureReport.role`.
    role: str | None = None


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
    #: Overall ETSI indication: TOTAL-FAILED if any signature failed, else
    #: INDETERMINATE if any is, else TOTAL-PASSED.  None when the file has no
    #: signatures (nothing to judge: ``signflow verify`` calls it unusable
    #: input); a file whose signatures cannot be read is TOTAL-FAILED/FORMAT_FAILURE.
    indication: str | None = None
    #: The sub-indication of the first signature with the overall indication.
    sub_indication: str | None = None
    #: The audit trail the file commits to (:mod:`signflow.pdf.trail_mark`), if it names one.
    audit_trail: TrailReport | None = None
    #: Signature fields nobody has signed yet (a round still running, or stopped).
    unsigned_fields: tuple[UnsignedField, ...] = ()
    #: Bytes after the end of the file's last revision: part of no revision, so of
    #: no signature and no change analysis (appended to the file as it was signed).
    trailing_bytes: int = 0

    @property
    def complete(self) -> bool:
        """Every signature field of the file is signed."""
        return not self.unsigned_fields

    def to_dict(self) -> dict:
        out = asdict(self)
        out["problems"] = list(self.problems)
        if out["audit_trail"]:
            out["audit_trail"]["problems"] = list(out["audit_trail"]["problems"])
        for sig in out["signatures"]:
            sig["problems"] = list(sig["problems"])
            if sig["evidence"]:
                sig["evidence"]["problems"] = list(sig["evidence"]["problems"])
        return out

    def held_to(self, events: Sequence[Mapping[str, Any]]) -> VerificationReport:
        """This report with its audit-trail mark compared with the round's trail
        *events* (as the API's ``/audit`` gives them); unchanged without a mark."""
        from signflow.core.audit import commits_to  # (here: the sandbox needs no SQLAlchemy)

        if self.audit_trail is None:
            return self
        return replace(self, audit_trail=replace(self.audit_trail, matches_trail=commits_to(
            events, self.audit_trail.seq, self.audit_trail.head)))

    @classmethod
    def from_dict(cls, body: dict) -> VerificationReport:
        """The inverse of :meth:`to_dict`."""
        sigs = []
        for raw in body["signatures"]:
            evidence = raw.get("evidence")
            sig = SignatureReport(**{**raw, "problems": tuple(raw["problems"]), "evidence": None})
            if evidence:
                sig = replace(sig, evidence=EvidenceReport(**{
                    **evidence, "problems": tuple(evidence["problems"]),
                    "recipients": tuple(evidence.get("recipients", ()))}))
            sigs.append(sig)
        trail = body.get("audit_trail")
        unsigned = tuple(UnsignedField(**f) for f in body.get("unsigned_fields", ()))
        return cls(**{**body, "signatures": tuple(sigs), "problems": tuple(body["problems"]),
                      "unsigned_fields": unsigned,
                      "audit_trail": TrailReport(**{**trail, "problems": tuple(trail["problems"])})
                      if trail else None})


@dataclass(frozen=True)
class AdesResult:
    """pyHanko's ETSI EN 319 102-1 long-term validation of one signature, kept
    for reports that are built from pyHanko's own objects."""

    #: pyHanko's ``EmbeddedPdfSignature``.
    signature: Any
    #: pyHanko's ``AdESLTAValidationResult`` (None for a document timestamp).
    result: Any


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
    evidence_keys: Sequence[bytes] = (), evidence_completions: Mapping[str, dict] | None = None,
    ades_results: dict[str, AdesResult] | None = None, workers: int = 1,
) -> VerificationReport:
    """Judge every signature in *data* against *trust_roots*.

    *provider_roots* are the roots the identity provider's own signatures
    (BankID's XML) must chain to; without them that check reports ``None``.
    *evidence_keys* are PEM private keys (as ``envelope.unlocked_key_pem`` gives them,
    checked) that may open sealed identity evidence;
    *evidence_completions* the auditors' evidence ZIP's entries by order reference,
    which check sealed evidence as a key would.  A dict passed as *ades_results*
    is filled, by field name, with each signature's pyHanko AdES long-term
    result (computed for that even when the file has no DSS), for reports that
    need pyHanko's own objects (:mod:`signflow.pdf.etsi_report`).  With *workers*
    2, a helper process judges about half of the signatures
    (:mod:`signflow.pdf.halves`; single-threaded processes only: the sandbox's).
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
            problems=(f"a signature in the file is malformed and cannot be checked: {exc}",),
            indication=TOTAL_FAILED, sub_indication="FORMAT_FAILURE")
    roots = [asn1_cert(c) for c in trust_roots]
    context = _FileContext(data, sigs, list(provider_roots), "/DSS" in reader.root, at,
                           tuple(evidence_keys), dict(evidence_completions or {}),
                           ades_results, _lta_spec(roots), at or datetime.now(UTC))
    reports = _judge_all(sigs, roots, context, workers)
    indication, sub_indication = overall_indication(reports)
    problems: tuple[str, ...] = () if reports else ("the file has no signatures",)
    # (not for a root unknown here: that is the reason then, and renewing mends nothing)
    reach = (_validation_data_reach(reader) if indication == INDETERMINATE
             and sub_indication != "NO_CERTIFICATE_CHAIN_FOUND" else None)
    if reach is not None and context.moment > reach:
        problems += (f"the validation data in the file reaches to {reach:%Y-%m-%d}: judged "
                     "later, it cannot settle the signatures. A copy with a newer document "
                     "timestamp from the issuing service (signflow lta renew), or a verifier "
                     "that fetches current revocation data, can",)
    return VerificationReport(
        valid=indication == TOTAL_PASSED, signatures=reports, sha256=sha,
        problems=problems,
        indication=indication, sub_indication=sub_indication,
        audit_trail=_audit_trail(reader, sigs, reports, roots, at),
        unsigned_fields=_unsigned_fields(reader) if reports else (),
        trailing_bytes=_trailing_bytes(data),
    )


def _validation_data_reach(reader) -> datetime | None:
    """The latest moment the revocation data in the file's DSS speaks for (the
    last ``nextUpdate`` of its CRLs and OCSP answers); None without any.  Judged
    after it, a long-term signature needs a newer document timestamp: an archived
    copy read years later said only "cannot be determined", and not why.

    The latest, not the one a given chain needed: a rough bound (a signer CA's
    CRL runs out within days, the root's after 400; only past the last of them
    is the file certainly out of data), which is why the note is only a note."""
    try:
        dss = reader.root.get("/DSS")
        dss = dss.get_object() if dss is not None else None
        if dss is None:
            return None
        reach: list[datetime] = []
        for ref in dss.get("/CRLs", ()):
            crl = x509.load_der_x509_crl(ref.get_object().data)
            if crl.next_update_utc is not None:
                reach.append(crl.next_update_utc)
        for ref in dss.get("/OCSPs", ()):
            answer = ocsp.load_der_ocsp_response(ref.get_object().data)
            if answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL \
                    and answer.next_update_utc is not None:
                reach.append(answer.next_update_utc)
    except Exception as exc:  # a broken DSS: the signatures' own verdicts say enough
        log.info("the DSS's revocation data cannot be read: %s", exc)
        return None
    return max(reach) if reach else None


def _unsigned_fields(reader) -> tuple[UnsignedField, ...]:
    """The file's empty signature fields, with the role its signature page names."""
    try:
        return tuple(UnsignedField(name, role_on_page(ref.get_object()))
                     for name, _, ref in enumerate_sig_fields(reader, filled_status=False))
    except Exception as exc:  # a broken form: the signatures' own verdicts say enough
        log.info("signature fields not enumerable: %s", exc)
        return ()


#: What may follow a PDF's last ``%%EOF`` without being content: line ends, blanks, NULs.
_PADDING = b" \t\r\n\f\x00"


def _trailing_bytes(data: bytes) -> int:
    """How many bytes follow the end of the file's last revision, padding aside."""
    end = data.rfind(b"%%EOF")
    rest = data[end + 5:].lstrip(_PADDING) if end >= 0 else b""
    return len(rest) if rest.strip(_PADDING) else 0


def _judge_all(sigs: list, roots: list, context: _FileContext,
               workers: int) -> tuple[SignatureReport, ...]:
    """Every signature's report, in order; in two processes where that may help.

    A signature's cost is mostly its difference analysis, one review per later
    revision; pyHanko objects (the ETSI report's) cannot cross processes.
    """
    if workers < 2 or len(sigs) < 2 or context.ades_results is not None:
        return tuple(_judge(sig, roots, context) for sig in sigs)
    from signflow.pdf.halves import in_two

    try:
        revisions = sigs[0].reader.xrefs.total_revisions
        weights = [1 + revisions - sig.signed_revision for sig in sigs]
    except Exception:  # a broken signature: _judge says so; the split need not be even
        weights = [1] * len(sigs)
    return tuple(in_two(lambda sig: _judge(sig, roots, context), sigs, weights))


def _audit_trail(reader, sigs: list, reports: Sequence[SignatureReport], roots: list,
                 at: datetime | None) -> TrailReport | None:
    """The file's audit-trail mark, judged, from the first revision a document
    timestamp covers that has one: XMP may change after a signature, so only a
    mark under a document timestamp counts (a later one could name another trail)."""
    for sig, report in zip(sigs, reports, strict=True):
        if report.kind != "timestamp":
            continue
        mark = trail_mark.read(reader, sig.signed_revision)
        if mark is None:
            continue
        if not report.intact:
            return trail_mark.unproven(mark, "the document timestamp over the audit trail's "
                                             "head is broken")
        # judged as of the document timestamp over it (which proves the mark existed
        # then): the TSA's certificate may expire long before the protocol does
        return trail_mark.judge(mark, _context(roots, _parsed(report.timestamp_time) or at))
    latest = trail_mark.read(reader, reader.xrefs.total_revisions - 1)
    if latest is None:
        return None
    return trail_mark.unproven(latest, "the audit trail named in the file is not covered by a "
                                       "document timestamp")


def _parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def overall_indication(signatures: Sequence[SignatureReport]) -> tuple[str | None, str | None]:
    """The file's indication and sub-indication from its signatures' (None, None: none)."""
    return _worst(signatures) if signatures else (None, None)


class _Indicated(Protocol):
    @property
    def indication(self) -> str: ...
    @property
    def sub_indication(self) -> str | None: ...


def _worst(items: Sequence[_Indicated]) -> tuple[str, str | None]:
    """The worst indication among *items*, with the sub-indication of the first that has it."""
    worst = max(items, key=lambda item: _RANK[item.indication], default=None)
    if worst is None or worst.indication == TOTAL_PASSED:
        return TOTAL_PASSED, None
    return worst.indication, worst.sub_indication


def warm() -> None:
    """Import in the sandbox's zygote what a verification child would load on first
    use: the evidence checks and cryptography's OpenSSL backend."""
    import pyhanko.pdf_utils.filters  # noqa: F401
    from cryptography.hazmat.backends.openssl import backend  # noqa: F401

    from signflow.adapters import evidence_checks  # noqa: F401
    from signflow.pdf import envelope, evidence  # noqa: F401


def verify_pdf_der(
    data: bytes, *, roots_der: Sequence[bytes], provider_roots_der: Sequence[bytes] = (),
    at: datetime | None = None, evidence_keys: Sequence[bytes] = (),
    evidence_completions: Mapping[str, dict] | None = None, workers: int = 1,
) -> VerificationReport:
    """:func:`verify_pdf` with DER roots (for the isolated child process)."""
    load = x509.load_der_x509_certificate
    return verify_pdf(data, [load(d) for d in roots_der], [load(d) for d in provider_roots_der],
                      at=at, evidence_keys=evidence_keys,
                      evidence_completions=evidence_completions, workers=workers)


def verify_isolated(
    data: bytes, trust_roots: Sequence[x509.Certificate],
    provider_roots: Sequence[x509.Certificate] = (), *, at: datetime | None = None,
    evidence_keys: Sequence[bytes] = (), evidence_completions: Mapping[str, dict] | None = None,
    workers: int = 1,
) -> VerificationReport:
    """:func:`verify_pdf` in a child process with memory, CPU and time limits.

    *evidence_keys* (PEM private keys) travel to the child through its input
    pipe, never through a file or the environment.  *workers* 2: the child has
    a helper judge about half of the signatures, under the same limits.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow.pdf import isolate

    report = isolate.run(
        "verify", data, roots_der=[c.public_bytes(Encoding.DER) for c in trust_roots],
        provider_roots_der=[c.public_bytes(Encoding.DER) for c in provider_roots], at=at,
        evidence_keys=list(evidence_keys), evidence_completions=dict(evidence_completions or {}),
        workers=workers)
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
    #: PEM private keys that may open sealed identity evidence (none: report it sealed).
    evidence_keys: Sequence[bytes] = ()
    #: The evidence ZIP's entries by order reference (none: report it sealed).
    evidence_completions: Mapping[str, dict] = field(default_factory=dict)
    #: Where to keep each signature's AdES result, by field name (None: keep none).
    ades_results: dict[str, AdesResult] | None = None
    #: The AdES long-term settings (:func:`_lta_spec`), one for the whole file.
    lta_spec: Any = None
    #: The one moment every signature's long-term validation is judged at.
    moment: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def private_evidence_keys(self) -> list:
        """:attr:`evidence_keys` read once for the whole file (they came from
        ``unlocked_key_pem``, which checked them; see ``envelope.load_key``)."""
        from signflow.pdf import envelope

        return [envelope.load_key(pem, checked=True) for pem in self.evidence_keys]

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


def _lta_spec(roots: list):
    """The AdES long-term validation settings for one file: its validation data only.

    Nothing is fetched: a hostile file must not make the verifier call URLs.
    """
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
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
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)),
        # No second difference analysis: validate_pdf_signature has judged the
        # changes after each signature already. With a policy here, pyHanko's
        # evidence-record pass re-analyses every revision for every signature
        # (25 analyses for a round of three, most of the time and memory).
        diff_policy=None)


def _ades_lta(sig, context: _FileContext) -> AdesResult:
    """AdES long-term validation of *sig* from the file's own validation data, at
    the file's one moment (every signature of a file is judged at the same)."""
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

    timing = ValidationTimingInfo(context.moment, context.moment,
                                  point_in_time_validation=False)
    return AdesResult(sig, asyncio.run(ades_lta_validation(sig, context.lta_spec,
                                                           timing_info=timing)))


def _ades_word(ades: AdesResult) -> str:
    """PASSED, or INDETERMINATE/FAILED with the sub-indication (``FAILED:HASH_FAILURE``)."""
    indication = ades.result.ades_subindic
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
            if context.ades_results is not None:  # kept for its token: there is no AdES pass
                context.ades_results[field] = AdesResult(sig, None)
            return _judge_timestamp(sig, field, roots, context.at)
        return _judge_signature(sig, field, kind, roots, context)
    except Exception as exc:  # a hostile file must yield a verdict, never a crash
        log.info("signature %s could not be validated: %s", field, exc)
        finding = _Finding(TOTAL_FAILED, "FORMAT_FAILURE",
                           f"the signature cannot be validated: {exc}")
        if isinstance(exc, ValueError) and str(exc).startswith("X.509 Name"):
            # a name RFC 4518 cannot prepare (an emoji, U+FFFD): the verifier's limit,
            # not a sign of a changed file, so not "failed"
            finding = _Finding(INDETERMINATE, "CERTIFICATE_CHAIN_GENERAL_FAILURE",
                               "a certificate's name holds characters that names cannot be "
                               f"compared with (RFC 4518): {' '.join(str(exc).split())}")
        return _signature_report(
            [finding],
            field=field, kind=kind, signer="", signer_subject="", signing_time=None,
            timestamp_time=None, intact=False, trusted=False, modification_level=None,
            coverage=None, docmdp_ok=None, transaction_id=None)
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


@dataclass(frozen=True)
class _Finding:
    """One problem with a signature, and the indication it leads to."""

    indication: str
    sub_indication: str | None
    text: str
    #: Where the issuing service publishes its trust anchors (unknown-root findings).
    anchors_url: str | None = None


def _signature_report(findings: Sequence[_Finding], **fields: Any) -> SignatureReport:
    """A :class:`SignatureReport` whose verdict comes from *findings* (none: passed)."""
    indication, sub_indication = _worst(findings)
    return SignatureReport(
        valid=indication == TOTAL_PASSED, problems=tuple(f.text for f in findings),
        indication=indication, sub_indication=sub_indication,
        trust_anchors_url=next((f.anchors_url for f in findings if f.anchors_url), None),
        **fields)


def _common_findings(status, trust: _Finding | None) -> list[_Finding]:
    """What every signature and timestamp is checked for; *trust*: its chain's finding."""
    found = []
    if not status.intact:
        found.append(_Finding(TOTAL_FAILED, "HASH_FAILURE", "the signed content has changed"))
    elif not status.valid:
        found.append(_Finding(TOTAL_FAILED, "SIG_CRYPTO_FAILURE",
                              "the signature value does not verify"))
    elif trust is not None:  # whom to trust is moot once the cryptography fails
        found.append(trust)
    level = status.modification_level
    if level is None or level.name not in ACCEPTABLE_LEVELS:
        found.append(_Finding(TOTAL_FAILED, None, "the document was changed after signing in a "
                              "way that is not allowed"))
    if status.docmdp_ok is False:
        found.append(_Finding(TOTAL_FAILED, None,
                              "later changes break the document's certification (DocMDP)"))
    return found


def _trust_finding(status, ades: str | None, trusted: bool) -> _Finding | None:
    """The chain's verdict in the standard's terms; None when it holds.

    The long-term (LTA) result speaks first: it places the signature in time
    with the file's own timestamps and revocation data.  Without one, the
    point-in-time check's reason is used.
    """
    state, _, sub = (ades or "").partition(":")
    if state != "FAILED" and trusted:
        return None
    if state not in ("FAILED", "INDETERMINATE"):
        reason = status.trust_problem_indic
        state = "FAILED" if isinstance(reason, AdESFailure) else "INDETERMINATE"
        sub = getattr(reason, "name", "") or "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    indication = TOTAL_FAILED if state == "FAILED" else INDETERMINATE
    if sub == "REVOKED":
        return _Finding(indication, sub, "the certificate has been revoked")
    if sub != NO_CERTIFICATE_CHAIN_FOUND:
        return _Finding(indication, sub, f"the certificate cannot be validated ({sub})")
    url = _trust_anchors_url(status.signing_cert)
    hint = f"; the service that issued it publishes its trust anchors at {url}" if url else ""
    return _Finding(indication, sub, f"the certificate does not chain to a trusted root{hint}",
                    anchors_url=url)


def _trust_anchors_url(cert: asn1_x509.Certificate) -> str | None:
    """``<service>/api/v1/trust-anchors`` of the signflow service that issued *cert*.

    signflow's certificates point to CRLs at ``<SIGNFLOW_BASE_URL>/pki/<name>.crl``,
    so the service is what comes before ``/pki/``.  None for other issuers.
    """
    try:
        urls = [point.url for point in cert.crl_distribution_points]
    except (ValueError, TypeError, KeyError):
        return None
    for url in urls:
        if not isinstance(url, str) or len(url) > 300 or not url.isprintable() or " " in url:
            continue
        parts = urlsplit(url)
        service, slash_pki, name = parts.path.rpartition("/pki/")
        if parts.scheme in ("http", "https") and parts.netloc and slash_pki \
                and name.endswith(".crl") and "/" not in name and not parts.query:
            return f"{parts.scheme}://{parts.netloc}{service}{TRUST_ANCHORS_PATH}"
    return None


def _judge_signature(sig, field: str, kind: str, roots: list,
                     context: _FileContext) -> SignatureReport:
    status = validate_pdf_signature(sig, signer_validation_context=_context(roots, context.at))
    keep = context.ades_results
    lta = _ades_lta(sig, context) if context.has_dss or keep is not None else None
    if keep is not None and lta is not None:
        keep[field] = lta
    ades = _ades_word(lta) if lta is not None and context.has_dss else None
    # Long-term validation places the signature in time (its timestamp, the CRLs
    # embedded with it): a per-act certificate that has since expired still holds.
    trusted = bool(status.trusted) or ades == "PASSED"
    findings = _common_findings(status, _trust_finding(status, ades, trusted))
    ts = status.timestamp_validity
    if ts is not None and not (ts.intact and ts.valid):
        findings.append(_Finding(TOTAL_FAILED, "SIG_CRYPTO_FAILURE" if ts.intact else
                                 "HASH_FAILURE", "the signature's timestamp does not verify"))
    tx_id = _transaction_id(status.signing_cert)
    evidence = judge_evidence(sig, context, tx_id)
    if evidence is not None:
        findings.extend(_Finding(TOTAL_FAILED, None, p) for p in evidence.problems)
    level = status.modification_level
    return _signature_report(
        findings,
        pades_level=context.level(sig, ts is not None), evidence=evidence, ades_indication=ades,
        field=field, kind=kind, signer=_cn(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=_iso(status.signer_reported_dt),
        timestamp_time=_iso(ts.timestamp) if ts else None,
        intact=bool(status.intact and status.valid), trusted=trusted,
        modification_level=level.name if level else None,
        coverage=status.coverage.name if status.coverage else None,
        docmdp_ok=status.docmdp_ok, transaction_id=tx_id,
        role=role_on_page(sig.sig_field) if kind == "approval" else None,
    )


#: A block label on signflow's signature page (prepare.py): its baseline and role,
#: written in cp1252 as ``Underskrift 2 – Justerare`` (or ``Signature 2 – …``).
_BLOCK_LABEL = re.compile(rb"1 0 0 1 [0-9.]+ ([0-9.]+) Tm\s*\((?:Underskrift|Signature) [0-9]+ "
                          rb"\x96 ((?:[^()\\]|\\.){1,200})\) Tj")
#: How far above its field the block label stands (prepare.py), in points.
_LABEL_ABOVE_FIELD = 8


def role_on_page(field) -> str | None:
    """The role in the block label just above signature *field* on the signature page."""
    try:
        top = float(field["/Rect"][3])
        contents = field["/P"]["/Contents"]
        streams = ([contents[i] for i in range(min(len(contents), 8))]
                   if isinstance(contents, list) else [contents])
        data = b"\n".join(stream.data for stream in streams)
    except Exception:  # no page, no rectangle: a file signflow did not prepare
        return None
    for match in _BLOCK_LABEL.finditer(data[:200_000]):
        if abs(float(match[1]) - (top + _LABEL_ABOVE_FIELD)) < 1:
            raw = re.sub(rb"\\(.)", rb"\1", match[2])
            return raw.decode("cp1252", "replace").strip() or None
    return None


def _judge_timestamp(sig, field: str, roots: list, at: datetime | None) -> SignatureReport:
    status = validate_pdf_timestamp(sig, validation_context=_context(roots, at))
    findings = _common_findings(status, _trust_finding(status, None, bool(status.trusted)))
    level = status.modification_level
    return _signature_report(
        findings, field=field, kind="timestamp", signer=_cn(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly, signing_time=None,
        timestamp_time=_iso(status.timestamp), intact=bool(status.intact and status.valid),
        trusted=bool(status.trusted), modification_level=level.name if level else None,
        coverage=status.coverage.name if status.coverage else None,
        docmdp_ok=status.docmdp_ok, transaction_id=None,
    )
