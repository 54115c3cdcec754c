"""The verdict as an ETSI TS 119 102-2 validation report (XML).

This is the report the EU's reference validator produces.  pyHanko writes one
per signature from its own AdES long-term validation
(:func:`pyhanko.sign.validation.report.tools.generate_report`, on the bindings
in :mod:`pyhanko.generated.etsi`); here they become one report for the file:
one ``SignatureValidationReport`` per signature (certification and
approvals), each validation object once, and each document timestamp as a
``timestamp`` validation object with its own report.

The ``SignatureValidationStatus`` of each is our verdict, not pyHanko's AdES
pass alone: :mod:`signflow.pdf.verify` judges more (changes after signing,
DocMDP, the identity evidence), so the report says what ``signflow verify``
says, with our findings in words as report data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from asn1crypto import cms
from cryptography import x509

from signflow.pdf.verify import (
    INDETERMINATE,
    TOTAL_FAILED,
    TOTAL_PASSED,
    AdesResult,
    SignatureReport,
    VerificationReport,
    verify_pdf,
)

log = logging.getLogger(__name__)
#: The report's namespace (TS 119 102-2 v1.2.1) and the prefixes it is written with.
NAMESPACE = "http://uri.etsi.org/19102/v1.2.1#"
PREFIXES = {"vr": NAMESPACE, "XAdES": "http://uri.etsi.org/01903/v1.3.2#",
            "ds": "http://www.w3.org/2000/09/xmldsig#"}
#: The standard's URIs for the main indications of :mod:`signflow.pdf.verify`.
MAIN_INDICATION = {
    TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
    TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
}
SUB_INDICATION = "urn:etsi:019102:subindication:"
#: The type of the report data that carries one of our findings in words (the
#: standard names none for text; this URN is ours).
FINDING = "urn:signflow:validation:finding"


@dataclass(frozen=True)
class EtsiVerification:
    """One verification, as our report and as the ETSI report."""

    report: VerificationReport
    #: The ETSI TS 119 102-2 report, UTF-8 XML; None when the file has no
    #: signatures (nothing judged: the standard's report needs at least one).
    xml: bytes | None


def verify_pdf_etsi(
    data: bytes, trust_roots: Sequence[x509.Certificate],
    provider_roots: Sequence[x509.Certificate] = (), *, at: datetime | None = None,
    evidence_keys: Sequence[bytes] = (), evidence_completions: Mapping[str, dict] | None = None,
) -> EtsiVerification:
    """:func:`~signflow.pdf.verify.verify_pdf`, and the ETSI report of the same run."""
    kept: dict[str, AdesResult] = {}
    report = verify_pdf(data, trust_roots, provider_roots, at=at, evidence_keys=evidence_keys,
                        evidence_completions=evidence_completions, ades_results=kept)
    return EtsiVerification(report, etsi_report_xml(report, kept))


def verify_pdf_etsi_der(
    data: bytes, *, roots_der: Sequence[bytes], provider_roots_der: Sequence[bytes] = (),
    at: datetime | None = None, evidence_keys: Sequence[bytes] = (),
    evidence_completions: Mapping[str, dict] | None = None,
) -> EtsiVerification:
    """:func:`verify_pdf_etsi` with DER roots (for the isolated child process)."""
    load = x509.load_der_x509_certificate
    return verify_pdf_etsi(data, [load(d) for d in roots_der],
                           [load(d) for d in provider_roots_der], at=at,
                           evidence_keys=evidence_keys,
                           evidence_completions=evidence_completions)


def verify_isolated_etsi(
    data: bytes, trust_roots: Sequence[x509.Certificate],
    provider_roots: Sequence[x509.Certificate] = (), *, at: datetime | None = None,
    evidence_keys: Sequence[bytes] = (), evidence_completions: Mapping[str, dict] | None = None,
) -> EtsiVerification:
    """:func:`verify_pdf_etsi` in the limited child that
    :func:`~signflow.pdf.verify.verify_isolated` uses; the XML comes back as bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow.pdf import isolate

    result = isolate.run(
        "verify_etsi", data, roots_der=[c.public_bytes(Encoding.DER) for c in trust_roots],
        provider_roots_der=[c.public_bytes(Encoding.DER) for c in provider_roots], at=at,
        evidence_keys=list(evidence_keys), evidence_completions=dict(evidence_completions or {}))
    assert isinstance(result, EtsiVerification)
    return result


def etsi_report_xml(report: VerificationReport, kept: Mapping[str, AdesResult]) -> bytes | None:
    """The ETSI report of *report*, from pyHanko's results *kept* by field name."""
    from pyhanko.generated.etsi import ts_11910202 as vr
    from xsdata.formats.dataclass.serializers import XmlSerializer
    from xsdata.formats.dataclass.serializers.config import SerializerConfig

    # document timestamps are validation objects, unless the file has nothing else
    signatures = [s for s in report.signatures if s.kind != "timestamp"] or report.signatures
    reports, objects = [], _ObjectList()
    if not signatures:
        if report.indication is None:  # no signatures: nothing was judged
            return None
        # signatures too malformed to take apart: the file's verdict stands for them
        reports.append(vr.SignatureValidationReportType(signature_validation_status=_status(
            report.indication, report.sub_indication, report.problems)))
    for sig in signatures:
        single, found = _signature_report(sig, kept.get(sig.field))
        reports.append(single)
        objects.extend(found)
    for sig in report.signatures:
        if sig.kind == "timestamp" and sig not in signatures and sig.field in kept:
            try:
                objects.extend(_timestamp_objects(sig, kept[sig.field]))
            except Exception as exc:  # a token without its certificate: judged, not listed
                log.info("document timestamp %s not listed: %s", sig.field, exc)
    document = vr.ValidationReport(
        signature_validation_report=tuple(reports),
        signature_validation_objects=vr.ValidationObjectListType(tuple(objects.items))
        if objects.items else None)
    xml = XmlSerializer(config=SerializerConfig(indent="  ")).render(document, ns_map=PREFIXES)
    return xml.encode("utf-8")


class _ObjectList:
    """Validation objects in first-seen order, each id once."""

    def __init__(self) -> None:
        self.items: list = []
        self._ids: set[str] = set()

    def extend(self, objects) -> None:
        for obj in objects:
            if obj.id not in self._ids:
                self._ids.add(obj.id)
                self.items.append(obj)


def _signature_report(sig: SignatureReport, ades: AdesResult | None) -> tuple:
    """*sig*'s SignatureValidationReport with our verdict, and its validation objects."""
    from pyhanko.generated.etsi import ts_11910202 as vr

    status = _status(sig.indication, sig.sub_indication, sig.problems)
    written = _pyhanko_report(ades) if ades is not None and ades.result is not None else None
    if ades is None or written is None:  # one pyHanko could not take apart: our verdict alone
        return vr.SignatureValidationReportType(signature_validation_status=status), ()
    single = written.signature_validation_report[0]
    info = single.signer_information
    single = replace(single, signature_validation_status=status,
                     signer_information=replace(info, signer=sig.signer) if info else None)
    listed = written.signature_validation_objects
    # the report names the signer's certificate, which pyHanko lists only when it
    # was used in a path it could build: listed here, the reference always resolves
    signer = _certificate_object(ades.result.api_status.signing_cert)
    return single, (*(listed.validation_object if listed else ()), signer)


def _pyhanko_report(ades: AdesResult):
    """pyHanko's report on one signature, read back into its bindings (None if it fails)."""
    from pyhanko.generated.etsi import ts_11910202 as vr
    from pyhanko.sign.validation.report.tools import generate_report
    from xsdata.formats.dataclass.parsers import XmlParser

    try:
        return XmlParser().from_string(generate_report(ades.signature, ades.result),
                                       vr.ValidationReport)
    except Exception as exc:  # e.g. a digest the XML syntax has no name for: still a report
        log.info("pyHanko wrote no ETSI report for %s: %s", ades.signature.field_name, exc)
        return None


def _status(indication: str, sub_indication: str | None, problems: Sequence[str]):
    """Our indication, sub-indication and findings as a ValidationStatusType."""
    from pyhanko.generated.etsi import ts_11910202 as vr

    findings = tuple(vr.TypedDataType(type_value=FINDING, value=text) for text in problems)
    return vr.ValidationStatusType(
        main_indication=MAIN_INDICATION[indication],
        sub_indication=(SUB_INDICATION + sub_indication,) if sub_indication else (),
        associated_validation_report_data=(vr.ValidationReportDataType(
            additional_validation_report_data=vr.AdditionalValidationReportDataType(findings)),)
        if findings else ())


def _timestamp_objects(sig: SignatureReport, kept: AdesResult) -> list:
    """A document timestamp as a ``timestamp`` validation object (the whole token)
    carrying our verdict on it, and the TSA's certificate that report names."""
    from pyhanko.generated.etsi import ts_11910202 as vr
    from pyhanko.sign.validation.ades import derive_validation_object_identifier
    from pyhanko_certvalidator.ltv.poe import ValidationObject, ValidationObjectType

    signed_data = kept.signature.signed_data
    token = ValidationObject(object_type=ValidationObjectType.TIMESTAMP, value=signed_data)
    tsa = _certificate_object(kept.signature.signer_cert)
    report = vr.SignatureValidationReportType(
        signer_information=vr.SignerInformationType(
            signer_certificate=vr.VOReferenceType(voreference=(tsa.id,)), signer=sig.signer),
        signature_validation_status=_status(sig.indication, sig.sub_indication, sig.problems))
    whole = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    return [tsa, vr.ValidationObjectType(
        id=str(derive_validation_object_identifier(token)), object_type=token.object_type.urn(),
        validation_object_representation=vr.ValidationObjectRepresentationType(base64=whole),
        validation_report=report)]


def _certificate_object(cert):
    """*cert* (asn1crypto) as a validation object, under pyHanko's identifier for it."""
    from pyhanko.generated.etsi import ts_11910202 as vr
    from pyhanko.sign.validation.ades import derive_validation_object_identifier
    from pyhanko_certvalidator.ltv.poe import ValidationObject, ValidationObjectType

    vo = ValidationObject(object_type=ValidationObjectType.CERTIFICATE, value=cert)
    return vr.ValidationObjectType(
        id=str(derive_validation_object_identifier(vo)), object_type=vo.object_type.urn(),
        validation_object_representation=vr.ValidationObjectRepresentationType(
            base64=cert.dump()))
