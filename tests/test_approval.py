"""Our own approval writer: the update it appends, the reader it uses, its refusals.

Whole rounds through pyHanko's CLI, adesverify and pdfsig are in
test_signed_pdf.py; these look at the pieces directly.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from datetime import UTC, datetime

import pikepdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from signflow.core.ports import SignerBlock
from signflow.pdf.approval import (
    ApprovalError,
    Dss,
    ToBeSigned,
    Update,
    embed_signature,
    fill_signature_field,
    locate_field,
    merge_dss,
    to_be_signed,
    write_signature,
    write_trailer,
)
from signflow.pdf.evidence import OID_EVIDENCE, read_evidence
from signflow.pdf.keys import asn1_cert, dev_timestamper
from signflow.pdf.pages import font_data, sample_protocol
from signflow.pdf.pki import load_pki
from signflow.pdf.rawpdf import Dict, RawPdf, RawPdfError, Ref
from signflow.pdf.service import PdfWorks


@pytest.fixture(scope="module")
def works(keys_dir, base_url) -> PdfWorks:
    pki = load_pki(keys_dir)
    return PdfWorks(pki, dev_timestamper(pki), base_url=base_url, max_bytes=50 << 20,
                    max_pages=100)


@pytest.fixture(scope="module")
def prepared(works) -> bytes:
    blocks = [SignerBlock(i, f"Underskrift{i}", "Justerare") for i in (1, 2)]
    return works.prepare(sample_protocol(), round_id="r-1", title="Protokoll", language="sv",
                         blocks=blocks).data


def block(i: int, name: str = "Anna Andersson", organisation: str = "Kommunen") -> SignerBlock:
    return SignerBlock(i, f"Underskrift{i}", "Justerare", name=name, organisation=organisation,
                       title="Nämndsekreterare", method="Mobilt BankID",
                       signed_at=datetime.now(UTC), transaction_id=f"tx-{i}")


FONT = font_data(False).name
SIGNED_AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def stages_to_be_signed(data: bytes, field: str, *, reserved: int = 64) -> ToBeSigned:
    """The approval's stages up to the digest, with no validation data."""
    pdf = RawPdf(data)
    target = locate_field(pdf, field, FONT)
    update = Update.after(data, target.first_free)
    blanks = write_signature(update, target, lines=["Anna"], signer_name="Anna",
                             reason="Justerat", signed_at=SIGNED_AT, reserved=reserved)
    merge_dss(pdf, update, target, Dss())
    write_trailer(pdf, update)
    return to_be_signed(data, update, blanks)


def status(works: PdfWorks, pdf: bytes, field: str):
    reader = PdfFileReader(io.BytesIO(pdf))
    sig = next(s for s in reader.embedded_signatures if s.field_name == field)
    vc = ValidationContext(trust_roots=[asn1_cert(works.pki.root.cert)], allow_fetching=False)
    return sig, validate_pdf_signature(sig, signer_validation_context=vc)


def test_the_reader_sees_what_qpdf_sees(prepared):
    raw = RawPdf(prepared)
    with pikepdf.open(io.BytesIO(prepared)) as pdf:
        assert raw.trailer["/Size"] == int(pdf.trailer.Size)
        compared = 0
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream) or not obj.is_indirect:
                continue
            mine = raw.get(Ref(*obj.objgen))
            if isinstance(obj, pikepdf.Stream):
                assert raw.stream_bytes(Ref(*obj.objgen)) == obj.read_raw_bytes()
            assert isinstance(mine, Dict)
            assert set(mine) == set(obj.keys()), obj.objgen
            for key in obj.keys():
                value = obj[key]
                if isinstance(value, pikepdf.String):
                    assert mine[key] == bytes(value)
                elif isinstance(value, pikepdf.Name):
                    assert mine[key] == str(value)
                elif isinstance(value, int) and not isinstance(value, bool):
                    assert mine[key] == value or isinstance(mine[key], Ref)
            compared += 1
        assert compared >= 30  # every object of the sample, streams included


def test_the_reader_refuses_what_it_does_not_handle(prepared):
    with pytest.raises(RawPdfError):
        RawPdf(b"not a pdf at all")
    with pikepdf.open(io.BytesIO(prepared)) as pdf:
        buf = io.BytesIO()
        pdf.save(buf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    with pytest.raises(RawPdfError, match="classic"):
        RawPdf(buf.getvalue())


def test_an_approval_is_intact_form_filling_and_carries_the_evidence(works, prepared):
    signed = works.sign_field(prepared, block=block(1), language="sv",
                              evidence={"provider": "bankid", "order_ref": "tx-1"})
    assert signed.startswith(prepared)  # an incremental update, nothing rewritten
    sig, st = status(works, signed, "Underskrift1")
    assert st.intact and st.valid and st.trusted
    assert st.modification_level.name == "NONE"
    assert st.timestamp_validity is not None and st.timestamp_validity.intact
    types = [a["type"].dotted for a in sig.signer_info["signed_attrs"]]
    assert OID_EVIDENCE in types and "1.2.840.113549.1.9.16.2.47" in types  # ESS v2
    assert "1.2.840.113549.1.9.5" not in types  # PAdES: no signing-time attribute
    assert read_evidence(sig.signer_info)["orderRef"] == "tx-1"
    # the certification still holds: form filling is what DocMDP 2 allows
    _, seal = status(works, signed, "Certifiering")
    assert seal.intact and seal.docmdp_ok and seal.modification_level.name == "FORM_FILLING"


def test_the_second_signature_adds_only_new_validation_data(works, prepared):
    one = works.sign_field(prepared, block=block(1), language="sv", evidence={})
    two = works.sign_field(one, block=block(2, name="Bo Berg"), language="sv", evidence={})
    dss = PdfFileReader(io.BytesIO(two)).root["/DSS"]
    assert len(dss["/Certs"]) == 5  # two signers, signer CA, root, TSA
    assert len(dss["/OCSPs"]) == 2
    for field in ("Underskrift1", "Underskrift2"):
        _, st = status(works, two, field)
        assert st.intact and st.valid and st.modification_level.name in ("NONE",
                                                                         "FORM_FILLING")


def test_unusual_names_survive_in_the_dictionary_and_the_stamp(works, prepared, tmp_path):
    name = "Åsa (Öst) \\ Ünal-Łukasz"
    long_org = "Samordningsförbundet för kommunerna i nordvästra Skåne och Halland " * 2
    signed = works.sign_field(prepared, block=block(1, name=name, organisation=long_org),
                              language="sv", evidence={})
    sig, st = status(works, signed, "Underskrift1")
    assert st.intact and st.valid
    assert sig.sig_object["/Name"] == name  # UTF-16 text string for what Latin-1 lacks
    if shutil.which("pdftotext"):
        (tmp_path / "s.pdf").write_bytes(signed)
        text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "s.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        # Ł is no Windows-1252 letter: the page font's extra letters (pages.EXTRA) have it
        assert "Namn: Åsa (Öst) \\ Ünal-Łukasz" in text
        assert "Transaktions-ID: tx-1" in text


def test_wrong_fields_are_refused(works, prepared):
    with pytest.raises(ApprovalError, match="no field"):
        works.sign_field(prepared, block=block(7), language="sv", evidence={})
    once = works.sign_field(prepared, block=block(1), language="sv", evidence={})
    with pytest.raises(ApprovalError, match="already signed"):
        works.sign_field(once, block=block(1), language="sv", evidence={})


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n1 0 obj\n(abc\\",                 # a string cut off in an escape
    b"%PDF-1.7\n1 0 obj\n<zz>\n",                 # a hex string that is not hex
    b"%PDF-1.7\n1 0 obj\n<00",                    # a hex string without its end
])
def test_the_reader_reports_broken_objects_as_its_own_error(data):
    body = data + b"\nendobj\n"
    xref = len(body)
    pdf = body + b"xref\n0 2\n0000000000 65535 f\r\n0000000009 00000 n\r\n" \
        b"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    with pytest.raises(RawPdfError):
        RawPdf(pdf).get(Ref(1, 0))


def test_the_reader_reads_line_ends_in_strings_as_lf():
    from signflow.pdf.rawpdf import _Parser

    assert _Parser(b"(a\r\nb\rc\\\r\nd)", 0).value() == b"a\nb\ncd"


def test_the_byte_range_covers_everything_but_the_contents(prepared):
    tbs = stages_to_be_signed(prepared, "Underskrift1", reserved=64)
    document = tbs.base + tbs.update
    zero, begin, end, rest = tbs.byte_range
    assert zero == 0 and end + rest == len(document)
    assert document[begin:end] == b"<" + b"0" * 128 + b">"
    assert tbs.digest == hashlib.sha256(document[:begin] + document[end:]).digest()
    assert RawPdf(document).get(tbs.placeholders.signature)["/ByteRange"] == list(tbs.byte_range)

    signed = embed_signature(tbs, b"\x30\x03abc")
    assert len(signed) == len(document)
    assert signed[:begin] == document[:begin] and signed[end:] == document[end:]
    assert signed[begin:end] == b"<3003616263" + b"0" * 118 + b">"


def test_the_dss_stage_adds_only_what_the_dss_does_not_hold(works, prepared):
    once = works.sign_field(prepared, block=block(1), language="sv", evidence={})
    pdf = RawPdf(once)
    target = locate_field(pdf, "Underskrift2", FONT)
    dss_ref = target.root["/DSS"]
    held = pdf.get(dss_ref)
    held_cert = pdf.stream_bytes(held["/Certs"][0])
    update = Update.after(once, target.first_free)
    added = merge_dss(pdf, update, target, Dss(certs=[held_cert, b"new", b"new"],
                                               ocsps=[b"ocsp"]))
    assert added.dss == dss_ref and len(added.certs) == 1 and len(added.ocsps) == 1
    assert added.crls == ()

    write_trailer(pdf, update)
    after = RawPdf(once + bytes(update.out))
    grown = after.get(dss_ref)
    assert grown["/Certs"] == held["/Certs"] + list(added.certs)
    assert grown["/OCSPs"] == held["/OCSPs"] + list(added.ocsps)
    assert grown["/CRLs"] == held["/CRLs"]
    assert after.stream_bytes(added.certs[0]) == b"new"


def test_a_reservation_too_small_for_the_signature_is_refused(prepared):
    with pytest.raises(ApprovalError, match="needs 65 bytes; 64 reserved"):
        fill_signature_field(prepared, field_name="Underskrift1", lines=["Anna"],
                             signer_name="Anna", reason="Justerat", signed_at=SIGNED_AT,
                             dss=Dss(), reserved=64, sign=lambda digest: bytes(65),
                             font_name=FONT)


def test_a_certificate_name_verifiers_cannot_compare_is_indeterminate_not_failed(
        works, prepared, monkeypatch):
    """signflow no longer writes such names (pki.name_safe), but a file from
    elsewhere may hold one: pyHanko cannot prepare the name (RFC 4518), which
    says nothing of the file being changed, so the verdict is "cannot be
    determined", not "failed"."""
    from signflow.pdf import pki
    from signflow.pdf.verify import verify_pdf

    monkeypatch.setattr(pki, "name_safe", lambda text, limit=64: text[:limit])
    signed = works.sign_field(prepared, block=block(1, name="Anna 🙂 Andersson"),
                              language="sv", evidence={})
    report = verify_pdf(signed, [works.pki.root.cert])
    [approval] = [s for s in report.signatures if s.field == "Underskrift1"]
    assert approval.indication == "INDETERMINATE", approval
    assert approval.sub_indication == "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    assert "RFC 4518" in " ".join(approval.problems)


def test_a_long_line_is_cut_with_an_ellipsis_not_shrunk_out_of_sight():
    """The race review: a 200-character organisation (the API allows it) shrank the
    whole block to about 3 pt.  The block shrinks to 3/4 at most; a line longer
    still ends in "…"."""
    from signflow.pdf.approval import MIN_SCALE, appearance

    lines = ["Namn: Anna Andersson", "Organisation: " + "Samordningsförbundet " * 10]
    ops = appearance(lines, 475, 100)
    scale = float(ops.split(b" ")[1])
    assert scale == MIN_SCALE
    assert b"Namn: Anna Andersson" in ops
    organisation = ops.split(b"T* (")[1].split(b") Tj")[0]
    assert organisation.startswith(b"Organisation: Samordningsf") and organisation.endswith(
        "…".encode("cp1252"))
    # a block that fits is left at full size, untouched
    assert appearance(["Namn: Bo"], 475, 100).split(b" ")[1] == b"1.0000"


def test_a_long_title_wraps_inside_the_margins_of_the_signature_page(works):
    from signflow.pdf.pages import MARGIN, text_width
    from signflow.pdf.prepare import title_lines

    title = "Protokoll från kommunstyrelsens arbetsutskott, sammanträde 2026-11-25, " * 5
    lines = title_lines("Dokument: " + title)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(text_width(line, 10) <= 595 - 2 * MARGIN for line in lines)
    short = title_lines("Dokument: Protokoll nr 2 2026")
    assert short == ["Dokument: Protokoll nr 2 2026"]  # no "…" on a title that fits
    blocks = [SignerBlock(1, "Underskrift1", "Justerare")]
    data = works.prepare(sample_protocol(), round_id="r-2", title=title[:300], language="sv",
                         blocks=blocks).data
    if shutil.which("pdftotext"):
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "p.pdf").write_bytes(data)
            text = subprocess.run(["pdftotext", "-layout", str(Path(tmp) / "p.pdf"), "-"],
                                  capture_output=True, text=True, check=True).stdout
        assert "Dokument: Protokoll från kommunstyrelsens arbetsutskott" in text
        assert "Dokument-ID: r-2" in text


@pytest.mark.parametrize("given,kept", [
    ("Kommunsekreterare 🙂", "Kommunsekreterare"),
    ("Örkelljunga kommun \ufffd ₹", "Örkelljunga kommun"),
    ("محمد (2)", "محمد"), ("שלום.", "שלום"), ("محمدٌ", "محمد"),
    ("עיריית תל אביב-יפו 2026", "עיריית תל אביב-יפו"), ("Ali محمد", "Ali"),
    ("Dvořák Łódź Şeyma", "Dvořák Łódź Şeyma"), ("🙂", "-")])
def test_a_certificate_name_keeps_what_verifiers_can_compare(given, kept):
    """Right-to-left text that ended in a digit or a stop lost all its letters
    (the review of pki.name_safe): now only what stands outside them goes."""
    from signflow.pdf.pki import _prepares, name_safe

    assert name_safe(given) == kept and _prepares(kept)
    assert len(name_safe("Å" * 100)) == 64


def test_names_in_letters_windows_1252_lacks_are_printed_not_question_marks(
        works, prepared, tmp_path):
    """The race review: "Łukasz Wiśniewski", "Ayşe Yıldız" and Sami "Ŋuolja-Čuđe"
    came out "?ukasz Wi?niewski" on the signature page, the legal record.  The
    pages' font now carries the letters of pages.EXTRA on 1252's free codes."""
    from signflow.pdf.approval import appearance
    from signflow.pdf.pages import EXTRA, pdf_string

    name = "Łukasz Wiśniewski"
    title = "Befattning " + EXTRA
    signed = works.sign_field(prepared, block=SignerBlock(
        1, "Underskrift1", "Justerare", name=name, organisation="Gironi suohkan / Čohkkiras",
        title=title, method="Mobilt BankID", signed_at=datetime.now(UTC), transaction_id="tx-1"),
        language="sv", evidence={})
    _, st = status(works, signed, "Underskrift1")
    assert st.intact and st.valid
    if shutil.which("pdftotext"):
        (tmp_path / "s.pdf").write_bytes(signed)
        text = subprocess.run(["pdftotext", str(tmp_path / "s.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert f"Namn: {name}" in text and "Gironi suohkan / Čohkkiras" in text
        assert EXTRA in text.replace("Befattning ", "").replace("\n", "")
    # the codes below 32 are written as octal escapes (a raw CR would be read as LF)
    assert pdf_string("Ł\r") == b"(\\001?)"
    # a document prepared before the font had them: "?" as then, not some other glyph
    old = appearance(["Namn: Łukasz"], 475, 100, extended=False)
    assert b"(Namn: ?ukasz)" in old


def test_a_cut_line_keeps_a_last_letter_whose_code_is_a_control_code():
    """The extra letters sit on codes 1-31; "Ź" is 0x09, which bytes.rstrip() took
    for a tab and cut off before the "…"."""
    from signflow.pdf.pages import decode, encode, font_data

    font = font_data(False)
    room = font.width(encode("abcŹ…"))
    assert decode(font.cut(encode("abcŹdefghijkl"), room)) == "abcŹ…"
    assert decode(font.cut(encode("ab  cdefghijkl"), font.width(encode("ab  …")))) == "ab…"
