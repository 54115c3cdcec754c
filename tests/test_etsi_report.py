"""The ETSI TS 119 102-2 validation report, checked against the standard's structure.

pyHanko ships the report's bindings but not its XSD, so the structure is checked
here: read strictly back into the bindings (which xsdata generated from the
XSD), and element by element with lxml for what the bindings do not enforce —
the sequence of a SignatureValidationReport, required elements, every
VOReference naming a validation object — and for our verdict in each status.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime

import pytest
from asn1crypto import x509 as asn1_x509
from lxml import etree

from signflow import cli
from signflow.pdf.etsi_report import verify_pdf_etsi
from tests.conftest import tamper
from tests.test_verify_page import csrf_of, post_verify

VR = "http://uri.etsi.org/19102/v1.2.1#"
NS = {"vr": VR}
MAIN = {"TOTAL-PASSED": "urn:etsi:019102:mainindication:total-passed",
        "INDETERMINATE": "urn:etsi:019102:mainindication:indeterminate",
        "TOTAL-FAILED": "urn:etsi:019102:mainindication:total-failed"}
#: SignatureValidationReportType's xs:sequence in TS 119 102-2 v1.2.1, in order.
SEQUENCE = ["SignatureIdentifier", "ValidationConstraintsEvaluationReport", "ValidationTimeInfo",
            "SignersDocument", "SignatureAttributes", "SignerInformation", "SignatureQuality",
            "SignatureValidationProcess", "SignatureValidationStatus"]


def local(element) -> str:
    return etree.QName(element).localname


def read_strictly(xml: bytes):
    """The report read into pyHanko's bindings, refusing anything they do not know."""
    from pyhanko.generated.etsi import ts_11910202
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig

    config = ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True,
                          fail_on_converter_warnings=True)
    return XmlParser(config=config).from_bytes(xml, ts_11910202.ValidationReport)


def check_structure(xml: bytes) -> etree._Element:
    """The checks every report must pass; returns the root element."""
    root = etree.fromstring(xml)
    assert root.tag == f"{{{VR}}}ValidationReport"
    bound = read_strictly(xml)
    assert len(bound.signature_validation_report) >= 1
    reports = root.findall("vr:SignatureValidationReport", NS)
    for report in reports:
        names = [local(child) for child in report]
        assert names == sorted(names, key=SEQUENCE.index), names  # the XSD's order
        assert names[-1] == "SignatureValidationStatus"
        status = report.find("vr:SignatureValidationStatus", NS)
        assert status.findtext("vr:MainIndication", namespaces=NS) in MAIN.values()
        for sub in status.findall("vr:SubIndication", NS):
            assert re.fullmatch(r"urn:etsi:019102:subindication:[A-Z_]+", sub.text)
    order = [local(child) for child in root]
    assert order == sorted(order, key=["SignatureValidationReport", "SignatureValidationObjects",
                                       "SignatureValidator", "Signature"].index)
    ids = [vo.get("id") for vo in root.iterfind(".//vr:ValidationObject[@id]", NS)]
    assert len(ids) == len(set(ids)), "a validation object is listed twice"
    for vo in root.iterfind("vr:SignatureValidationObjects/vr:ValidationObject", NS):
        assert vo.findtext("vr:ObjectType", namespaces=NS).startswith(
            "urn:etsi:019102:validationObject:")
        assert vo.find("vr:ValidationObjectRepresentation", NS) is not None
    for ref in root.iterfind(".//*[@VOReference]"):
        for target in ref.get("VOReference").split():
            assert target in ids, f"VOReference {target} names no validation object"
    return root


def signature_reports(root) -> list:
    return root.findall("vr:SignatureValidationReport", NS)


def object_by_id(root, ident: str):
    return root.find(f"vr:SignatureValidationObjects/vr:ValidationObject[@id='{ident}']", NS)


def same_moment(a: str, b: str) -> bool:
    parse = datetime.fromisoformat
    return abs((parse(a.replace("Z", "+00:00")) - parse(b.replace("Z", "+00:00")))
               .total_seconds()) < 1


def api_etsi(client, pdf: bytes):
    return client.post("/api/v1/verify?format=etsi",
                       data={"document": (io.BytesIO(pdf), "x.pdf")})


def test_the_api_reports_every_signature_with_our_verdict_signer_and_time(client, demo_run):
    resp = api_etsi(client, demo_run.pdf)
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    assert "attachment" in resp.headers["Content-Disposition"]
    root = check_structure(resp.data)
    ours = client.post("/api/v1/verify", data={
        "document": (io.BytesIO(demo_run.pdf), "x.pdf")}).get_json()
    signed = [s for s in ours["signatures"] if s["kind"] != "timestamp"]
    reports = signature_reports(root)
    assert len(reports) == len(signed) == 4  # the seal's certification and three approvals
    for report, sig in zip(reports, signed, strict=True):
        status = report.find("vr:SignatureValidationStatus", NS)
        assert status.findtext("vr:MainIndication", namespaces=NS) == MAIN[sig["indication"]]
        assert sig["indication"] == "TOTAL-PASSED"
        assert status.find("vr:SubIndication", NS) is None
        when = report.findtext("vr:SignatureAttributes/vr:SigningTime/vr:Time", namespaces=NS)
        assert same_moment(when, sig["signing_time"])
        info = report.find("vr:SignerInformation", NS)
        assert info.findtext("vr:Signer", namespaces=NS) == sig["signer"]
        cert_vo = object_by_id(root, info.find("vr:SignerCertificate", NS).get("VOReference"))
        der = base64.b64decode(cert_vo.findtext(
            "vr:ValidationObjectRepresentation/vr:base64", namespaces=NS))
        assert asn1_x509.Certificate.load(der).subject.native["common_name"] == sig["signer"]
        assert report.findtext("vr:SignatureValidationProcess/vr:SignatureValidationProcessID",
                               namespaces=NS) == "urn:etsi:019102:validationprocess:LTA"
        digest = report.findtext("vr:SignersDocument/vr:DigestAlgAndValue/"
                                 "{http://www.w3.org/2000/09/xmldsig#}DigestValue",
                                 namespaces=NS)
        assert digest


def test_the_document_timestamp_is_a_validation_object_with_its_own_verdict(client, demo_run):
    root = check_structure(api_etsi(client, demo_run.pdf).data)
    stamps = [vo for vo in root.iterfind("vr:SignatureValidationObjects/vr:ValidationObject", NS)
              if vo.findtext("vr:ObjectType", namespaces=NS).endswith(":timestamp")]
    assert len(stamps) == 1
    report = stamps[0].find("vr:ValidationReport", NS)
    assert report.findtext("vr:SignatureValidationStatus/vr:MainIndication",
                           namespaces=NS) == MAIN["TOTAL-PASSED"]
    assert "TSA" in report.findtext("vr:SignerInformation/vr:Signer", namespaces=NS)


def test_an_unknown_root_is_indeterminate_in_the_report_too(demo_run):
    verified = verify_pdf_etsi(demo_run.pdf, [])  # trusting nothing
    root = check_structure(verified.xml)
    signed = [s for s in verified.report.signatures if s.kind != "timestamp"]
    for report, sig in zip(signature_reports(root), signed, strict=True):
        assert sig.indication == "INDETERMINATE"
        status = report.find("vr:SignatureValidationStatus", NS)
        assert status.findtext("vr:MainIndication", namespaces=NS) == MAIN["INDETERMINATE"]
        assert status.findtext("vr:SubIndication", namespaces=NS) == \
            f"urn:etsi:019102:subindication:{sig.sub_indication}"


def test_a_changed_file_is_total_failed_with_the_reasons_in_words(client, demo_run):
    resp = api_etsi(client, tamper(demo_run.pdf))
    assert resp.status_code == 200
    root = check_structure(resp.data)
    reports = signature_reports(root)
    assert reports
    for report in reports:
        status = report.find("vr:SignatureValidationStatus", NS)
        assert status.findtext("vr:MainIndication", namespaces=NS) == MAIN["TOTAL-FAILED"]
        assert status.findtext("vr:SubIndication", namespaces=NS) == \
            "urn:etsi:019102:subindication:HASH_FAILURE"
        words = status.findall(".//vr:ReportData/vr:Value", NS)
        assert any("changed" in (w.text or "") for w in words)


def test_a_file_without_signatures_has_no_report(client, protocol_pdf):
    resp = api_etsi(client, protocol_pdf)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "no_signatures"
    assert verify_pdf_etsi(protocol_pdf, []).xml is None


def test_the_command_line_writes_the_report(demo_run, tmp_path, keys_dir, monkeypatch, capsys):
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    out = tmp_path / "rapport.xml"
    assert cli.main(["verify", str(demo_run.path), "--etsi", str(out)]) == 0
    assert "TOTAL-PASSED" in capsys.readouterr().out  # the text report still prints
    assert len(signature_reports(check_structure(out.read_bytes()))) == 4
    assert cli.main(["verify", str(demo_run.path), "--etsi", "-"]) == 0
    check_structure(capsys.readouterr().out.encode("utf-8"))
    assert cli.main(["verify", str(demo_run.path), "--etsi", "-", "--json"]) == 2


def test_the_verify_page_offers_the_report_beside_pdf_and_json(client, demo_run):
    page = post_verify(client, demo_run.pdf)
    html = page.get_data(as_text=True)
    assert 'value="etsi"' in html and 'value="json"' in html and 'value="pdf"' in html
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    form = {"csrf_token": csrf_of(html), "report": fields["report"], "etsi": fields["etsi"]}
    resp = client.post("/verify/report", data={**form, "format": "etsi"})
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    assert len(signature_reports(check_structure(resp.data))) == 4
    forged = client.post("/verify/report", data={**form, "etsi": fields["etsi"][:-3] + "abc",
                                                 "format": "etsi"})
    assert forged.status_code == 400
    direct = post_verify(client, demo_run.pdf, format="etsi")
    assert direct.mimetype == "application/xml"
    check_structure(direct.data)


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_the_download_button_speaks_the_pages_language(client, demo_run, lang):
    html = post_verify(client, demo_run.pdf, lang=lang).get_data(as_text=True)
    word = "Ladda ned som ETSI-XML" if lang == "sv" else "Download as ETSI XML"
    assert word in html


def test_signatures_too_broken_to_read_still_get_a_failed_report(demo_run, keys_dir):
    from signflow.pdf.pki import load_root_certificate

    at = demo_run.pdf.index(b"/Contents <") + len(b"/Contents <")
    end = demo_run.pdf.index(b">", at)
    zeroed = demo_run.pdf[:at] + b"0" * (end - at) + demo_run.pdf[end:]
    verified = verify_pdf_etsi(zeroed, [load_root_certificate(keys_dir)])
    assert verified.report.indication == "TOTAL-FAILED"
    reports = signature_reports(check_structure(verified.xml))
    assert len(reports) == 1
    status = reports[0].find("vr:SignatureValidationStatus", NS)
    assert status.findtext("vr:MainIndication", namespaces=NS) == MAIN["TOTAL-FAILED"]
    assert status.findtext("vr:SubIndication", namespaces=NS) == \
        "urn:etsi:019102:subindication:FORMAT_FAILURE"


def test_a_file_with_only_a_document_timestamp_reports_that(protocol_pdf, keys_dir):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper

    from signflow.pdf.keys import dev_timestamper
    from signflow.pdf.pki import load_pki, load_root_certificate

    writer = IncrementalPdfFileWriter(io.BytesIO(protocol_pdf))
    stamped = PdfTimeStamper(dev_timestamper(load_pki(keys_dir))).timestamp_pdf(
        writer, "sha256").getvalue()
    verified = verify_pdf_etsi(stamped, [load_root_certificate(keys_dir)])
    reports = signature_reports(check_structure(verified.xml))
    assert len(reports) == 1 == len(verified.report.signatures)
    assert reports[0].findtext("vr:SignatureValidationStatus/vr:MainIndication",
                               namespaces=NS) == MAIN[verified.report.indication]
