"""pyHanko's part of the signed document: certification, the closing seal, renewal.

Each signer's approval in between is :mod:`signflow.pdf.approval`'s; its
visible lines and revocation data come from here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from signflow.core.ports import SignerBlock, TrailHead
from signflow.errors import UnsupportedDocument
from signflow.pdf import trail_mark
from signflow.pdf.keys import asn1_cert, timestamp_token_for
from signflow.pdf.pki import Pki, make_crl
from signflow.pdf.prepare import FieldPlacement

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ROOT_CRL_DAYS = 400
SEAL_FIELD = "Certifiering"

LABELS = {
    "sv": ("Namn", "Identifieringsmetod", "Organisation", "Befattning", "Datum och tid",
           "Transaktions-ID"),
    "en": ("Name", "Identification method", "Organisation", "Title", "Date and time",
           "Transaction ID"),
}
KEYS = ("name", "method", "organisation", "title", "when", "txid")


def swedish_time(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS GMT+01:00`` in Europe/Stockholm, as on the seed's page."""
    local = moment.astimezone(STOCKHOLM)
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S") + f" GMT{offset[:3]}:{offset[3:]}"


def certify(
    data: bytes, placements: Sequence[FieldPlacement], *, seal: signers.Signer,
    timestamper: TimeStamper, reason: str, permissions: MDPPerm = MDPPerm.FILL_FORMS,
) -> bytes:
    """Create the empty signer fields and certify the document with the seal.

    DocMDP level 2 (form filling and signing, the default) lets the signers'
    approvals and the closing validation data follow without breaking the
    certification; a document nobody signs after the seal gets level 1.
    """
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data))
    except (PdfError, KeyError, ValueError) as exc:  # what qpdf wrote, pyHanko cannot read
        raise UnsupportedDocument(f"the PDF cannot be read once normalized: {exc!r}",
                                  code="unparsable") from None
    for p in placements:
        fields.append_signature_field(
            writer, SigFieldSpec(sig_field_name=p.field_name, on_page=p.page_index, box=p.box))
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD, certify=True, docmdp_permissions=permissions,
        subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256", reason=reason,
    )
    out = signers.PdfSigner(meta, seal, timestamper=timestamper).sign_pdf(
        writer, bytes_reserved=16384)
    return out.getvalue()


def stamp_lines(block: SignerBlock, language: str) -> list[str]:
    """The visible block of a signed field, labelled like the seed's signature page."""
    values = {
        "name": block.name, "method": block.method, "organisation": block.organisation or "-",
        "title": block.title or "-",
        "when": swedish_time(block.signed_at) if block.signed_at else "",
        "txid": block.transaction_id,
    }
    lines = [f"{label}: {values[key]}" for label, key in zip(LABELS[language], KEYS, strict=True)]
    if not block.identity_checked:
        lines.append(NOT_CHECKED[language])
    return lines


#: Said on the block when the round's policy compared nobody with the invitation.
NOT_CHECKED = {"sv": "Identiteten kontrollerades inte mot inbjudan",
               "en": "Identity not checked against the invitation"}


def revocation_data(pki: Pki) -> list[bytes]:
    """Current CRLs of our CAs (DER): the root's long-lived, the signer CA's short."""
    # The root's CRL (it lists only CAs and the TSA) is long-lived, so an archived
    # document checks out offline for a year; `lta renew` refreshes it before then.
    # The signer CA's CRL only has to be fresh at each signature's timestamp.
    return [make_crl(pki.root, days=ROOT_CRL_DAYS).public_bytes(Encoding.DER),
            make_crl(pki.signer_ca).public_bytes(Encoding.DER)]


def validation_context(pki: Pki) -> ValidationContext:
    """Our trust root with fresh CRLs of our CAs."""
    return ValidationContext(
        trust_roots=[asn1_cert(pki.root.cert)],
        other_certs=[asn1_cert(pki.signer_ca.cert), asn1_cert(pki.tsa.cert)],
        crls=revocation_data(pki),
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


def seal(data: bytes, *, pki: Pki, timestamper: TimeStamper,
         trail: TrailHead | None = None) -> bytes:
    """Embed validation data for every signature, then a document timestamp (B-LTA).

    With *trail*, the audit trail's head is timestamped and written into the
    same revision first (:mod:`signflow.pdf.trail_mark`), under the document timestamp.
    """
    vc = validation_context(pki)
    reader = PdfFileReader(io.BytesIO(data))
    certs = [asn1_cert(pki.root.cert), asn1_cert(pki.signer_ca.cert), asn1_cert(pki.tsa.cert)]
    for sig in reader.embedded_signatures:
        certs.extend(c.chosen for c in sig.signed_data["certificates"] or ())
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    DocumentSecurityStore.supply_dss_in_writer(
        writer, None, certs=_unique(certs), crls=list(vc.crls))
    if trail is not None:
        trail_mark.write(writer, trail, timestamp_token_for(timestamper, bytes.fromhex(trail.hash)))
    out = signers.PdfTimeStamper(timestamper).timestamp_pdf(
        writer, "sha256", validation_context=vc, bytes_reserved=16384)
    return out.getvalue()


def _unique(certs):
    seen, out = set(), []
    for c in certs:
        if c.sha256 not in seen:
            seen.add(c.sha256)
            out.append(c)
    return out


def renew(data: bytes, *, pki: Pki, timestamper: TimeStamper) -> bytes:
    """Re-timestamp an archived document (PAdES-LTA renewal).

    Validation data for the last document timestamp goes into the DSS, then a
    new document timestamp covers everything, so the evidence outlives the
    previous TSA certificate and algorithms.
    """
    reader = PdfFileReader(io.BytesIO(data))
    out = io.BytesIO()
    signers.PdfTimeStamper(timestamper).update_archival_timestamp_chain(
        reader, validation_context(pki), in_place=False, output=out)
    return out.getvalue()
