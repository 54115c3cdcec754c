"""Signatures into a prepared PDF: certification, approvals, and the closing seal."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from signflow.core.ports import SignerBlock
from signflow.pdf.keys import asn1_cert
from signflow.pdf.pki import Pki, make_crl
from signflow.pdf.prepare import FieldPlacement
from signflow.pdf.stampfont import StampFontFactory

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


@functools.cache
def _stamp_style(language: str) -> TextStampStyle:
    """The visible block: our embedded font, left-aligned lines like the seed's page."""
    text = "\n".join(f"{label}: %({key})s" for label, key in zip(LABELS[language], KEYS,
                                                                  strict=True))
    box = TextBoxStyle(font=StampFontFactory(font_size=9), font_size=9, leading=12)
    left = layout.SimpleBoxLayoutRule(
        x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MID,
        margins=layout.Margins(left=12, right=12, top=6, bottom=6))
    return TextStampStyle(stamp_text=text, border_width=0, text_box_style=box,
                          inner_content_layout=left)


def certify(
    data: bytes, placements: Sequence[FieldPlacement], *, seal: signers.Signer,
    timestamper: TimeStamper, reason: str,
) -> bytes:
    """Create the empty signer fields and certify the document with the seal.

    DocMDP level 2 (form filling and signing) lets the signers' approvals and
    the closing validation data follow without breaking the certification.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    for p in placements:
        fields.append_signature_field(
            writer, SigFieldSpec(sig_field_name=p.field_name, on_page=p.page_index, box=p.box))
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD, certify=True, docmdp_permissions=MDPPerm.FILL_FORMS,
        subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256", reason=reason,
    )
    out = signers.PdfSigner(meta, seal, timestamper=timestamper).sign_pdf(
        writer, bytes_reserved=16384)
    return out.getvalue()


def approve(
    data: bytes, block: SignerBlock, *, signer: signers.Signer, timestamper: TimeStamper,
    language: str, reason: str, validation: ValidationContext, extra_bytes: int = 0,
) -> bytes:
    """Fill *block*'s field with the signer's PAdES signature and visible block.

    The signer's chain and the CRLs current at this moment go into the DSS of
    the same revision (B-LT per signature): the per-act certificate expires
    within a day, and with that CRL a validator can place the signature in
    time decades later.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    meta = signers.PdfSignatureMetadata(
        field_name=block.field_name, subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256",
        name=block.name, reason=reason, embed_validation_info=True,
        validation_context=validation,
        dss_settings=DSSContentSettings(
            placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE, include_vri=False),
    )
    params = {
        "name": block.name, "method": block.method, "organisation": block.organisation or "-",
        "title": block.title or "-",
        "when": swedish_time(block.signed_at) if block.signed_at else "",
        "txid": block.transaction_id,
    }
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=timestamper,
                                   stamp_style=_stamp_style(language))
    # Reserved: CMS with chain and timestamp token (~5 KB), plus the evidence, as hex.
    reserved = 16384 + 2 * extra_bytes + 1024
    out = pdf_signer.sign_pdf(writer, appearance_text_params=params, bytes_reserved=reserved)
    return out.getvalue()


def validation_context(pki: Pki, ocsps: Sequence[bytes] = ()) -> ValidationContext:
    """Our trust root with fresh CRLs (and OCSP responses) of our CAs."""
    # The root's CRL (it lists only CAs and the TSA) is long-lived, so an archived
    # document checks out offline for a year; `lta renew` refreshes it before then.
    # The signer CA's CRL only has to be fresh at each signature's timestamp.
    crls = [make_crl(pki.root, days=ROOT_CRL_DAYS), make_crl(pki.signer_ca)]
    from cryptography.hazmat.primitives.serialization import Encoding

    return ValidationContext(
        trust_roots=[asn1_cert(pki.root.cert)],
        other_certs=[asn1_cert(pki.signer_ca.cert), asn1_cert(pki.tsa.cert)],
        crls=[c.public_bytes(Encoding.DER) for c in crls],
        ocsps=list(ocsps),
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


def seal(data: bytes, *, pki: Pki, timestamper: TimeStamper) -> bytes:
    """Embed validation data for every signature, then a document timestamp (B-LTA)."""
    vc = validation_context(pki)
    reader = PdfFileReader(io.BytesIO(data))
    certs = [asn1_cert(pki.root.cert), asn1_cert(pki.signer_ca.cert), asn1_cert(pki.tsa.cert)]
    for sig in reader.embedded_signatures:
        certs.extend(c.chosen for c in sig.signed_data["certificates"] or ())
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    DocumentSecurityStore.supply_dss_in_writer(
        writer, None, certs=_unique(certs), crls=list(vc.crls))
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
