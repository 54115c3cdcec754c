"""Manipulations of our own signed output: every one must come out not valid."""

import io
import re

import pytest

from signflow.pdf.verify import verify_pdf


@pytest.fixture
def signed(completed_round):
    return completed_round[1]


@pytest.fixture
def judge(runtime):
    def run(pdf: bytes):
        return verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots(),
                          evidence_keys=runtime.evidence_keys)  # as the service judges

    return run


def test_our_output_is_valid_with_evidence(signed, judge):
    report = judge(signed)
    assert report.valid
    approvals = [s for s in report.signatures if s.kind == "approval"]
    assert len(approvals) == 3
    for s in approvals:
        assert s.pades_level == "B-LTA"
        assert s.evidence is not None and s.evidence.matches_document
        assert s.evidence.provider_signature_valid is True
        assert s.evidence.order_ref == s.transaction_id


def same_length(pdf: bytes, pattern: bytes, make) -> bytes:
    m = re.search(pattern, pdf)
    assert m, pattern
    new = make(m.group(0))
    assert len(new) == len(m.group(0))
    return pdf[:m.start()] + new + pdf[m.end():]


def test_wrapping_gap_larger_than_contents(signed, judge):
    """Move the end of the first range back: the gap now hides bytes outside /Contents."""
    def widen(br: bytes) -> bytes:
        nums = [int(x) for x in re.findall(rb"\d+", br)]
        nums[1] -= 40
        text = b"/ByteRange [" + b" ".join(str(n).encode() for n in nums) + b"]"
        return text.ljust(len(br) - 1) + b"]" if len(text) < len(br) else text[:len(br)]

    tampered = same_length(signed, rb"/ByteRange \[[ \d]+\]", widen)
    report = judge(tampered)
    assert not report.valid
    assert not report.signatures[0].valid


def test_empty_contents(signed, judge):
    tampered = same_length(signed, rb"/Contents <[0-9a-fA-F]+>",
                           lambda m: b"/Contents <" + b"0" * (len(m) - 12) + b">")
    assert not judge(tampered).valid


def test_missing_contents(signed, judge):
    tampered = same_length(signed, rb"/Contents <", lambda m: b"/Contentz <")
    assert not judge(tampered).valid


def test_malformed_byte_range(signed, judge):
    tampered = same_length(signed, rb"/ByteRange \[[ \d]+\]",
                           lambda m: b"/ByteRange [" + b"x" * (len(m) - 13) + b"]")
    assert not judge(tampered).valid


def incremental(pdf: bytes, change) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(w)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_added_annotation_breaks_certification(signed, judge):
    from pyhanko.pdf_utils import generic as g

    def annotate(w):
        page_ref = w.root["/Pages"]["/Kids"][0]
        page = page_ref.get_object()
        annot = w.add_object(g.DictionaryObject({
            g.NameObject("/Type"): g.NameObject("/Annot"),
            g.NameObject("/Subtype"): g.NameObject("/FreeText"),
            g.NameObject("/Rect"): g.ArrayObject([g.NumberObject(n) for n in (50, 50, 300, 90)]),
            g.NameObject("/Contents"): g.TextStringObject("Ej godkänt"),
            g.NameObject("/DA"): g.TextStringObject("/Helv 12 Tf 0 g"),
        }))
        annots = page.get("/Annots", g.ArrayObject())
        annots.append(annot)
        page[g.NameObject("/Annots")] = annots
        w.update_container(page)

    report = judge(incremental(signed, annotate))
    assert not report.valid
    cert = next(s for s in report.signatures if s.kind == "certification")
    assert not cert.valid


def test_added_signature_field_is_not_valid(signed, judge):
    from pyhanko.sign import fields

    def add_field(w):
        fields.append_signature_field(w, fields.SigFieldSpec(
            "Smuggled", on_page=0, box=(10, 10, 100, 40)))

    report = judge(incremental(signed, add_field))
    assert not report.valid


def test_evidence_for_another_document_is_caught(runtime, protocol_pdf, judge):
    from datetime import UTC, datetime

    from signflow.core.ports import SignerBlock

    pdf = runtime.services.pdf
    blocks = [SignerBlock(1, "Underskrift1", "Justerare")]
    prepared = pdf.prepare(protocol_pdf, round_id="r1", title="T", language="sv",
                           blocks=blocks).data
    block = SignerBlock(1, "Underskrift1", "Justerare", name="A B", method="Mobilt BankID",
                        signed_at=datetime.now(UTC), transaction_id="tx-1")
    evidence = {"provider": "Mobilt BankID", "order_ref": "tx-1",
                "document_sha256": "ab" * 32, "completion": {}}
    signed = pdf.sign_field(prepared, block=block, language="sv", evidence=evidence)
    report = judge(signed)
    approval = next(s for s in report.signatures if s.kind == "approval")
    assert not approval.valid
    assert approval.evidence is not None and not approval.evidence.matches_document
