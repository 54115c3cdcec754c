"""The signed PDF of a whole round, judged by us, by pyHanko's CLI and by Poppler."""

import io
import json
import re
import shutil
import subprocess
import sys

import pytest

from signflow import cli
from tests.conftest import ROOT, tamper
from tests.test_verify_page import post_verify

PYHANKO = shutil.which("pyhanko") or str(ROOT / ".venv/bin/pyhanko")


@pytest.fixture(params=["api-round", "demo"])
def signed_pdf(request) -> bytes:
    """A final PDF from a round driven over HTTP, and the one `signflow demo` writes."""
    if request.param == "demo":
        return request.getfixturevalue("demo_run").pdf
    return request.getfixturevalue("completed_round")[1]


def verify_api(client, pdf: bytes, headers: dict | None = None) -> dict:
    resp = client.post("/api/v1/verify", data={"document": (io.BytesIO(pdf), "x.pdf")},
                       headers=headers or {})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_round_completes_with_bankid_evidence(completed_round, client, auth):
    body, pdf = completed_round
    assert body["status"] == "completed" and body["completed_at"]
    for s in body["signers"]:
        assert s["status"] == "signed" and s["method"] == "Mobilt BankID"
        assert re.fullmatch(r"[0-9a-f-]{36}", s["transaction_id"])
    types = [e["type"] for e in client.get(f"/api/v1/rounds/{body['id']}/audit",
                                            headers=auth).get_json()["events"]]
    assert types.count("signer.signed") == 3 and types.count("signature.applied") == 3
    assert types[-1] == "round.completed"


def test_our_verifier_says_valid(completed_round, client, auth):
    body, pdf = completed_round
    report = verify_api(client, pdf, auth)  # the round's organisation sees the cross-check
    assert report["valid"] is True, report
    kinds = [s["kind"] for s in report["signatures"]]
    assert kinds.count("approval") == 3 and "certification" in kinds and "timestamp" in kinds
    approvals = [s for s in report["signatures"] if s["kind"] == "approval"]
    assert {s["transaction_id"] for s in approvals} == {s["transaction_id"]
                                                       for s in body["signers"]}
    for s in report["signatures"]:
        assert s["intact"] and s["trusted"] and s["timestamp_time"]
    cross = report["round"]
    assert cross["id"] == body["id"] and cross["transaction_ids_match"]
    assert cross["all_required_signers_present"] and cross["times_match_audit_trail"]
    assert cross["chain_intact"] and cross["signers_in_document"] == 3


def test_a_changed_byte_is_not_valid(completed_round, client):
    _, pdf = completed_round
    report = verify_api(client, tamper(pdf))
    assert report["valid"] is False
    assert any("changed" in p for s in report["signatures"] for p in s["problems"])


def test_a_page_added_after_signing_is_not_valid(completed_round, client):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    _, pdf = completed_round
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Page"),
        generic.NameObject("/MediaBox"): generic.ArrayObject(
            [generic.NumberObject(0), generic.NumberObject(0),
             generic.NumberObject(595), generic.NumberObject(842)]),
    })
    w.insert_page(page)
    out = io.BytesIO()
    w.write(out)
    report = verify_api(client, out.getvalue())
    assert report["valid"] is False


def test_cli_verify_exit_codes(completed_round, tmp_path, monkeypatch, keys_dir, capsys):
    _, pdf = completed_round
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    assert cli.main(["verify", str(good), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and len(out["signatures"]) == 5
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(tamper(pdf))
    assert cli.main(["verify", str(bad)]) == 1
    assert "NOT VALID" in capsys.readouterr().out
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf")
    assert cli.main(["verify", str(junk)]) == 2
    assert cli.main(["verify", str(tmp_path / "missing.pdf")]) == 2


def test_pyhanko_cli_says_valid(signed_pdf, keys_dir, tmp_path, live_server):
    """pyhanko sign validate fetches our CRLs from the live service, as a stranger would."""
    pdf = signed_pdf
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    root = str(keys_dir / "root-ca.pem")
    for command in ("validate", "adesverify"):
        proc = subprocess.run(
            [PYHANKO, "sign", command, "--trust", root, "--trust-replace",
             "--executive-summary", str(path)],
            capture_output=True, text=True, timeout=120)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("Certifiering",
                                                                          "Underskrift"))]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(lines) == 4 and all(ln.endswith(":VALID") for ln in lines), proc.stdout


def test_pyhanko_cli_rejects_tampering(signed_pdf, keys_dir, tmp_path, live_server):
    pdf = signed_pdf
    path = tmp_path / "tampered.pdf"
    path.write_bytes(tamper(pdf))
    proc = subprocess.run(
        [PYHANKO, "sign", "validate", "--trust", str(keys_dir / "root-ca.pem"),
         "--trust-replace", "--executive-summary", str(path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert ":VALID" not in proc.stdout


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"LOUD SKIP: {tool} is not installed (make test installs poppler-utils and "
                    "libnss3-tools with apt where it can)")
    return path


@pytest.fixture
def nss_db(tmp_path, keys_dir):
    certutil = _need("certutil")
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-n", "signflow-root", "-t", "CT,C,C",
                    "-i", str(keys_dir / "root-ca.pem")], check=True)
    return db


def test_pdfsig_says_valid_and_trusted(signed_pdf, nss_db, tmp_path, live_server):
    pdfsig = _need("pdfsig")
    pdf = signed_pdf
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([pdfsig, "-nssdir", f"sql:{nss_db}", str(path)],
                         capture_output=True, text=True, timeout=60).stdout
    blocks = [b for b in out.split("Signature #")[1:] if "Timestamp" not in b.split("\n")[1]]
    assert len(blocks) == 4, out
    for block in blocks:
        assert "Signature Validation: Signature is Valid." in block, out
        assert "Certificate Validation: Certificate is Trusted." in block, out


def test_pdfsig_sees_a_changed_byte(signed_pdf, nss_db, tmp_path, live_server):
    pdfsig = _need("pdfsig")
    pdf = signed_pdf
    path = tmp_path / "tampered.pdf"
    path.write_bytes(tamper(pdf))
    out = subprocess.run([pdfsig, "-nssdir", f"sql:{nss_db}", str(path)],
                         capture_output=True, text=True, timeout=60).stdout
    assert "Signature is Valid." not in out.split("Signature #2")[0]


def test_signature_page_reads_like_the_seed(completed_round, tmp_path):
    pdftotext = _need("pdftotext")
    body, pdf = completed_round
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True,
                          text=True, timeout=60).stdout
    last = text.split("\f")[-2] if text.endswith("\f") else text.split("\f")[-1]
    assert "Underskrifter" in last and "Underskrift 3" in last
    for s in body["signers"]:
        assert f"Transaktions-ID: {s['transaction_id']}" in last
    assert "Identifieringsmetod: Mobilt BankID" in last
    assert re.search(r"Datum och tid: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+0[12]:00", last)
    assert "Örkelljunga kommun" in last
    assert f"Dokument-ID: {body['id']}" in text.split("\f")[0]


def test_verify_needs_no_token_and_refuses_garbage(client):
    resp = client.post("/api/v1/verify", data={"document": (io.BytesIO(b"junk"), "x.pdf")})
    assert resp.status_code == 415
    resp = client.post("/api/v1/verify", data={})
    assert resp.status_code == 400
    anchors = client.get("/api/v1/trust-anchors")
    assert anchors.status_code == 200 and b"BEGIN CERTIFICATE" in anchors.data


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("validators are exercised on Linux")


def test_every_font_is_embedded(completed_round, tmp_path):
    pdffonts = _need("pdffonts")
    _, pdf = completed_round
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    lines = subprocess.run([pdffonts, str(path)], capture_output=True, text=True,
                           timeout=60).stdout.splitlines()[2:]
    assert lines, "no fonts listed"
    for line in lines:
        emb = line.split()[-5]
        assert emb == "yes", line


def test_footer_on_every_page(completed_round, tmp_path):
    pdftotext = _need("pdftotext")
    body, pdf = completed_round
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    pages = subprocess.run([pdftotext, str(path), "-"], capture_output=True, text=True,
                           timeout=60).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) == 3
    for page in pages:
        assert f"Dokument-ID: {body['id']}" in page and "/verify" in page


def test_pdf_report(completed_round, client, tmp_path):
    _, pdf = completed_round
    resp = client.post("/api/v1/verify?format=pdf",
                       data={"document": (io.BytesIO(pdf), "x.pdf")})
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    pdftotext = shutil.which("pdftotext")
    if pdftotext:
        path = tmp_path / "report.pdf"
        path.write_bytes(resp.data)
        text = subprocess.run([pdftotext, str(path), "-"], capture_output=True,
                              text=True).stdout
        assert "Verifieringsrapport" in text and "Giltig: alla tre har signerat" in text
        assert "Underskrift3" in text and "Ordförande" in text
    # the verdict is itself evidence: certified by the service's seal, nothing may
    # change after it, timestamped, validation data inside (B-LTA)
    again = client.post("/api/v1/verify", data={"document": (io.BytesIO(resp.data), "r.pdf")})
    verdict = again.get_json()
    assert verdict["indication"] == "TOTAL-PASSED", verdict
    [seal] = [s for s in verdict["signatures"] if s["kind"] != "timestamp"]
    assert (seal["kind"], seal["signer"], seal["pades_level"], seal["docmdp_ok"]) == (
        "certification", "signflow Service Seal", "B-LTA", True), seal
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import MDPPerm

    certification = PdfFileReader(io.BytesIO(resp.data)).embedded_signatures[0]
    assert certification.docmdp_level == MDPPerm.NO_CHANGES
    tampered = resp.data.replace(b"Giltig: alla tre", b"Giltig: alla tv\xe5")
    if tampered != resp.data:
        bad = client.post("/api/v1/verify", data={"document": (io.BytesIO(tampered), "r.pdf")})
        assert bad.get_json()["indication"] != "TOTAL-PASSED"


def test_signature_blocks_reuse_the_pages_font(completed_round):
    """Stamps refer to the embedded SignflowSans instead of embedding it again."""
    import pikepdf

    _, pdf = completed_round
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        names = [str(o.get("/FontName")) for o in doc.objects
                 if isinstance(o, pikepdf.Dictionary) and o.get("/Type") == "/FontDescriptor"]
        assert names and all("SignflowSans" in n for n in names)
        # pyHanko's own embedding would add subsets named like ABCDEF+SignflowSans
        assert not [n for n in names if "+" in n], names


def test_verify_page_in_the_browser_flow(completed_round, client):
    _, pdf = completed_round
    page = client.get("/verify?document=abc")
    assert page.status_code == 200 and "abc" in page.get_data(as_text=True)
    resp = post_verify(client, pdf)
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).count('data-indication="TOTAL-PASSED"') == 5
    assert client.post("/verify", data={}).status_code == 400  # no CSRF token
    assert post_verify(client, None).status_code == 400  # no file


def test_the_dss_holds_each_crl_once(signed_pdf):
    """Our CRLs are the same bytes all hour from every process (web, worker), so
    the signatures of a round share them: one per CA, two if the round crossed
    the hour, never a copy per signature for every verifier to work through."""
    from asn1crypto import crl as asn1_crl
    from pyhanko.pdf_utils.reader import PdfFileReader

    dss = PdfFileReader(io.BytesIO(signed_pdf)).root["/DSS"]
    crls = [ref.get_object().data for ref in dss["/CRLs"]]
    assert len(set(crls)) == len(crls), "a CRL is stored twice"
    issuers = [asn1_crl.CertificateList.load(der).issuer.human_friendly for der in crls]
    assert len(set(issuers)) == 2 and all(issuers.count(i) <= 2 for i in issuers), issuers


def test_a_crl_is_the_same_all_period_and_new_after(keys_dir):
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow.pdf.pki import CRL_PERIOD, CRL_SKEW, load_pki, make_crl

    pki = load_pki(keys_dir)
    start = datetime(2026, 12, 2, 14, 0, tzinfo=UTC) + CRL_SKEW

    def der(ca, at):
        return make_crl(ca, now=at).public_bytes(Encoding.DER)

    assert der(pki.root, start) == der(pki.root, start + CRL_PERIOD - timedelta(seconds=1))
    assert der(pki.root, start) != der(pki.root, start + CRL_PERIOD)
    assert der(pki.root, start) != der(pki.signer_ca, start)
    issued = make_crl(pki.signer_ca, now=start + timedelta(minutes=30))
    assert issued.last_update_utc == start - CRL_SKEW
    assert issued.next_update_utc - issued.last_update_utc == timedelta(days=7)
    assert issued.is_signature_valid(pki.signer_ca.cert.public_key())


def test_text_a_certificate_name_cannot_hold_still_gives_a_valid_file(
        client, auth, runtime, settings, protocol_pdf):
    """The race review: an emoji in a title, "₹" or a U+FFFD from a bad copy-paste
    in an organisation went into the signer's certificate as given; verifiers
    refuse such a name (RFC 4518 string preparation), and pyHanko then failed
    every signature of the untouched file, for good.  The certificate gets the
    text without those characters; the signature page keeps what was given."""
    from tests.conftest import create_round, sign_all, signers_spec, wait_for_status

    signers = signers_spec()
    signers[0]["title"] = "Kommunsekreterare 🙂"
    signers[1]["organisation"] = "Örkelljunga kommun \ufffd ₹"
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201, resp.get_json()
    sign_all(client, runtime, settings, signers)
    body = wait_for_status(client, auth, resp.get_json()["id"], "completed")
    pdf = client.get(f"/api/v1/rounds/{body['id']}/document", headers=auth).data
    report = verify_api(client, pdf, auth)
    assert report["valid"] is True, report
    assert all(s["indication"] == "TOTAL-PASSED" for s in report["signatures"]), report


def test_judged_past_its_validation_data_a_file_says_why_it_cannot_be_settled(
        completed_round, keys_dir):
    """The archivist's review: the copy mailed at completion, checked offline two
    years on, was "cannot be determined" with no word of why or what to do."""
    from datetime import UTC, datetime

    from signflow.pdf.pki import load_root_certificate
    from signflow.pdf.verdict_words import plain_problem
    from signflow.pdf.verify import verify_pdf

    _, pdf = completed_round
    root = load_root_certificate(keys_dir)
    now = verify_pdf(pdf, [root])
    assert now.valid and not any("validation data" in p for p in now.problems)
    later = verify_pdf(pdf, [root], at=datetime(2031, 1, 1, tzinfo=UTC))
    assert later.indication == "INDETERMINATE"
    [said] = [p for p in later.problems if p.startswith("the validation data in the file")]
    day = re.search(r"reaches to (\d{4}-\d{2}-\d{2})", said).group(1)
    assert "2026-12-01" < day < "2031-01-01" and "signflow lta renew" in said
    assert plain_problem(said, "sv").startswith(f"Valideringsuppgifterna i filen räcker till {day}")
    # a root unknown here is the reason then, not the data: no note sends anyone to renew
    stranger = verify_pdf(pdf, [], at=datetime(2031, 1, 1, tzinfo=UTC))
    assert stranger.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert not any("validation data" in p for p in stranger.problems)
