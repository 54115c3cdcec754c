"""The auditor's page /verify and the start page, through Flask's test client."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from html import unescape

import pytest

from signflow.adapters.bankid_sim import PERSONAS
from signflow.web.security import stockholm_time
from tests.conftest import create_round, sign_all, signers_spec, tamper, wait_for_status


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found[1]


def post_verify(client, data: bytes | None, *, lang: str = "", **form: str):
    """Upload *data* on /verify as a browser does: the form first, then its token."""
    query = f"?lang={lang}" if lang else ""
    token = csrf_of(client.get(f"/verify{query}").get_data(as_text=True))
    fields: dict = {"csrf_token": token, **form}
    if data is not None:
        fields["document"] = (io.BytesIO(data), "protokoll.pdf")
    return client.post(f"/verify{query}", data=fields)


def text_of(resp) -> str:
    """The page's text without tags, spaces collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", resp.get_data(as_text=True), flags=re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture
def checked_round(client, auth, runtime, settings, protocol_pdf):
    """A round of three whose personal numbers were given, signed by all, and its PDF."""
    signers = signers_spec()
    for spec, person in zip(signers, PERSONAS, strict=True):
        spec["personal_number"] = person.personal_number
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201, resp.get_json()
    sign_all(client, runtime, settings, signers)
    body = wait_for_status(client, auth, resp.get_json()["id"], "completed")
    pdf = client.get(f"/api/v1/rounds/{body['id']}/document", headers=auth).data
    return body, pdf


def test_the_form_has_a_labelled_file_input_a_csrf_token_and_the_document_id(client):
    page = client.get("/verify?document=9cf54af4000e4ae9a366536514a70a43")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<label for="document">' in html and 'id="document" type="file"' in html
    assert csrf_of(html)
    assert "Dokument-ID <code>9cf54af4000e4ae9a366536514a70a43</code>: ladda upp PDF-filen" \
        in html
    assert '<html lang="sv">' in html
    assert "<script>" not in client.get("/verify?document=<script>").get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(client):
    resp = client.post("/verify", data={"document": (io.BytesIO(b"%PDF-1.7"), "x.pdf")})
    assert resp.status_code == 400


def test_a_signed_round_is_valid_with_names_roles_times_and_transactions(
        checked_round, client):
    body, pdf = checked_round
    resp = post_verify(client, pdf)
    assert resp.status_code == 200
    text = text_of(resp)
    assert "Giltig: alla tre har signerat" in text
    api = client.post("/api/v1/verify", data={"document": (io.BytesIO(pdf), "x.pdf")}).get_json()
    approvals = [s for s in api["signatures"] if s["kind"] == "approval"]
    assert [s["role"] for s in approvals] == ["Sekreterare", "Justerare", "Ordförande"]
    for sig in approvals:
        assert f"{sig['signer']} – {sig['role']}" in text
        assert stockholm_time(sig["timestamp_time"], seconds=True) in text
        assert sig["transaction_id"] in text
    assert text.count("Identiteten kontrollerades mot inbjudan (personnummer).") == 3
    assert text.count("förseglat för granskare och oförändrat") == 3
    assert "Tjänstens försegling" in text and "Dokumentets tidsstämpel" in text
    assert "Tekniska detaljer" in text
    for person in PERSONAS:  # never a personal number, in any spelling
        digits = person.personal_number.replace("-", "")
        assert digits not in text.replace("-", "")
        assert digits not in resp.get_data(as_text=True).replace("-", "")


def test_a_tampered_copy_is_not_valid(checked_round, client):
    _, pdf = checked_round
    resp = post_verify(client, tamper(pdf))
    assert resp.status_code == 200
    text = text_of(resp)
    assert "Ogiltig: dokumentet har ändrats efter underskrift" in text
    assert "Det undertecknade innehållet har ändrats" in text
    assert "Lita inte på innehållet i den här filen." in text
    assert "HASH_FAILURE" in text  # in the technical details


def test_english_on_request(checked_round, client):
    _, pdf = checked_round
    text = text_of(post_verify(client, pdf, lang="en"))
    assert "Valid: all three have signed" in text
    assert "Identity checked against the invitation (personal number)." in text
    assert "The service's seal" in text and "Transaction ID" in text
    assert "– Chair" in text and "Ordförande" not in text  # the page's language, not the file's
    bad = text_of(post_verify(client, tamper(pdf), lang="en"))
    assert "Not valid: the document has been changed after it was signed" in bad


def as_signed_by_two(pdf: bytes) -> bytes:
    """*pdf* as it stood after its second signature: a round two of three have signed."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    sigs = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    _, _, start, length = next(s for s in sigs if s.field_name == "Underskrift2").byte_range
    return pdf[:start + length]


def test_a_file_signed_by_some_says_who_has_not_signed(checked_round, client):
    _, pdf = checked_round
    partial = as_signed_by_two(pdf)
    text = text_of(post_verify(client, partial))
    assert "Inte färdigsignerad: 2 av 3 har signerat" in text
    assert "Underskrift3 (Ordförande) är inte signerad." in text
    assert "Giltig" not in text and "verdict-warn" in post_verify(client, partial).get_data(
        as_text=True)
    english = text_of(post_verify(client, partial, lang="en"))
    assert "Not fully signed: 2 of 3 have signed" in english
    assert "Underskrift3 (Chair) is not signed." in english
    api = client.post("/api/v1/verify",
                      data={"document": (io.BytesIO(partial), "x.pdf")}).get_json()
    assert api["valid"] is True  # what is there holds
    assert api["unsigned_fields"] == [{"field": "Underskrift3", "role": "Ordförande"}]
    whole = client.post("/api/v1/verify", data={"document": (io.BytesIO(pdf), "x.pdf")})
    assert whole.get_json()["unsigned_fields"] == []


def test_bytes_appended_to_a_signed_file_are_pointed_out(checked_round, client):
    _, pdf = checked_round
    assert "byte efter sin sista version" not in text_of(post_verify(client, pdf + b"\r\n"))
    text = text_of(post_verify(client, pdf + b"\n% appended later\n"))
    assert "Giltig: alla tre har signerat" in text  # what was signed still holds
    assert "Filen har 17 byte efter sin sista version." in text
    api = client.post("/api/v1/verify", data={"document": (
        io.BytesIO(pdf + b"\n% appended later\n"), "x.pdf")}).get_json()
    assert api["trailing_bytes"] == 17 and api["valid"] is True


def test_the_verdict_downloads_as_pdf_and_json_without_a_new_upload(checked_round, client,
                                                                     tmp_path):
    _, pdf = checked_round
    page = post_verify(client, pdf).get_data(as_text=True)
    token = re.search(r'name="report" value="([^"]+)"', page)[1]
    form = {"csrf_token": csrf_of(page), "report": token}
    as_json = client.post("/verify/report", data={**form, "format": "json"})
    assert as_json.status_code == 200 and as_json.mimetype == "application/json"
    assert "attachment" in as_json.headers["Content-Disposition"]
    assert 'filename="verifiering-' in as_json.headers["Content-Disposition"]
    report = json.loads(as_json.data)
    assert report["indication"] == "TOTAL-PASSED" and len(report["signatures"]) == 5
    as_pdf = client.post("/verify/report", data={**form, "format": "pdf"})
    assert as_pdf.status_code == 200 and as_pdf.mimetype == "application/pdf"
    assert as_pdf.data.startswith(b"%PDF-")
    pdftotext = shutil.which("pdftotext")
    if pdftotext:
        (tmp_path / "r.pdf").write_bytes(as_pdf.data)
        words = subprocess.run([pdftotext, str(tmp_path / "r.pdf"), "-"], capture_output=True,
                               text=True).stdout
        assert "Giltig: alla tre har signerat" in words and "Ordförande" in words
        for person in PERSONAS:
            assert person.personal_number.replace("-", "") not in words.replace("-", "")
    for person in PERSONAS:
        assert person.personal_number.replace("-", "") not in as_json.get_data(as_text=True)
    forged = client.post("/verify/report", data={**form, "report": token[:-3] + "abc",
                                                 "format": "json"})
    assert forged.status_code == 400 and "Ladda upp filen igen" in text_of(forged)


def test_a_download_can_be_asked_for_with_the_upload(completed_round, client):
    _, pdf = completed_round
    resp = post_verify(client, pdf, format="json")
    assert resp.mimetype == "application/json"
    assert json.loads(resp.data)["indication"] == "TOTAL-PASSED"


def test_an_unsigned_pdf_has_nothing_to_verify(client, protocol_pdf):
    resp = post_verify(client, protocol_pdf)
    assert resp.status_code == 200
    assert "Inget att kontrollera: filen saknar underskrifter" in text_of(resp)


@pytest.mark.parametrize(("data", "status", "sv", "en"), [
    (b"hello, not a pdf", 415, "Filen är ingen PDF.", "The file is not a PDF."),
    (b"", 415, "Filen är tom.", "The file is empty."),
    (None, 400, "Välj PDF-filen som ska kontrolleras.", "Choose the PDF file to check."),
])
def test_upload_problems_are_shown_next_to_the_field(client, data, status, sv, en):
    for lang, words in (("", sv), ("en", en)):
        resp = post_verify(client, data, lang=lang)
        assert resp.status_code == status and resp.mimetype == "text/html"
        html = resp.get_data(as_text=True)
        assert re.search(r'id="document-error" class="field-error" role="alert">'
                         + re.escape(words), html)
        assert 'aria-describedby="document-hint document-error" aria-invalid="true"' in html


def test_a_file_over_the_limit_is_refused_on_the_page(client, runtime):
    too_big = b"%PDF-1.7\n" + b"0" * (runtime.settings.verify_max_bytes + 2 * 1024 * 1024)
    resp = post_verify(client, too_big)
    assert resp.status_code == 413 and resp.mimetype == "text/html"
    assert "Filen är större än" in text_of(resp)


def test_the_start_page_describes_the_service_and_links_to_login(client, runtime,
                                                                  monkeypatch):
    text = client.get("/").get_data(as_text=True)
    assert 'href="/login"' in text and "Logga in" in text and "BankID" in text
    assert 'action="/verify"' in text and '<label for="document">' in text
    assert "/dev/outbox" in text and "/bankid-sim/" in text  # the test app is in dev mode
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Log in" in english and "Signing of meeting protocols" in english
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, dev_mode=False))
    production = client.get("/").get_data(as_text=True)
    assert "/dev/outbox" not in production and "/bankid-sim/" not in production


def test_the_verdicts_words_exist_in_both_languages():
    from signflow.pdf import verdict_text

    for table in (verdict_text.INDICATIONS, verdict_text.MEANINGS, verdict_text.SUB_INDICATIONS,
                  verdict_text.HEADLINES, verdict_text.ADVICE, verdict_text.KIND_TITLES,
                  verdict_text.EVIDENCE_WORDS, verdict_text.NUMBERS, verdict_text.FILE_NOTES):
        assert set(table["sv"]) == set(table["en"])
    assert all(set(words) == {"sv", "en"} for _, words in verdict_text.PROBLEMS)


def test_a_file_from_another_service_cannot_be_determined_and_says_what_to_do(
        client, tmp_path):
    """Signed by another signflow (its own development root): not forged, undecided."""
    env = {"PATH": "/usr/bin:/bin", "SIGNFLOW_KEYS_DIR": str(tmp_path / "keys"),
           "SIGNFLOW_BASE_URL": "http://other-signflow.example:8080",
           "SIGNFLOW_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "other.pdf"
    proc = subprocess.run([sys.executable, "-m", "signflow.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for lang, words in (("", ("Kan inte avgöras:", "hämta tjänstens rotcertifikat",
                              "Den här tjänstens eget rotcertifikat: /api/v1/trust-anchors")),
                        ("en", ("Cannot be determined:", "get that service's root certificate",
                                "This service's own root certificate: /api/v1/trust-anchors"))):
        resp = post_verify(client, out.read_bytes(), lang=lang)
        assert resp.status_code == 200
        text = text_of(resp)
        for said in words:
            assert said in text
        assert "Ogiltig" not in text and "Not valid" not in text  # undecided, not forged
        assert 'href="/api/v1/trust-anchors"' in resp.get_data(as_text=True)


def test_an_unknown_root_with_a_published_address_names_where_to_get_it():
    from signflow.pdf.verdict_words import plain_verdict
    from signflow.pdf.verify import SignatureReport, VerificationReport

    url = "https://underskrifter.helsingborg.example.se/api/v1/trust-anchors"
    sig = SignatureReport(
        field="Underskrift1", kind="approval", signer="Carina Leffler",
        signer_subject="CN=Carina Leffler", signing_time=None,
        timestamp_time="2026-03-12T09:15:02+00:00", intact=True, trusted=False,
        modification_level="NONE", coverage="ENTIRE_REVISION", docmdp_ok=True,
        transaction_id="tx", valid=False, indication="INDETERMINATE",
        sub_indication="NO_CERTIFICATE_CHAIN_FOUND", trust_anchors_url=url, role="Ordförande")
    report = VerificationReport(valid=False, signatures=(sig,), problems=(), sha256="0" * 64,
                                indication="INDETERMINATE",
                                sub_indication="NO_CERTIFICATE_CHAIN_FOUND")
    sv, en = plain_verdict(report, "sv"), plain_verdict(report, "en")
    assert sv.headline == "Kan inte avgöras: utfärdaren av underskrifterna är inte känd här"
    assert en.headline == "Cannot be determined: the issuer of the signatures is not known here"
    assert any(url in line for line in sv.advice) and any(url in line for line in en.advice)
    assert sv.names == "INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND"
    assert sv.approvals[0].role == "Ordförande" and sv.approvals[0].who == "Carina Leffler"
