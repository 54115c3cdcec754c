"""Verdicts an auditor can act on: ETSI indications, exit codes, one set of trust settings."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pikepdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signflow import cli
from signflow.adapters.certs import BANKID_PRODUCTION_ROOT, BANKID_TEST_ROOT, shipped_certs
from signflow.config import Settings
from signflow.pdf.keys import asn1_cert
from signflow.pdf.pages import A4, MARGIN
from signflow.pdf.report import report_pdf
from signflow.pdf.verify import (
    INDETERMINATE,
    TOTAL_FAILED,
    TOTAL_PASSED,
    SignatureReport,
    VerificationReport,
    _trust_anchors_url,
    overall_indication,
)
from signflow.trust import trust_settings
from tests.conftest import tamper
from tests.test_verify_page import post_verify

NO_CHAIN = "NO_CERTIFICATE_CHAIN_FOUND"


def offline(monkeypatch, tmp_path, **env: str) -> None:
    """An auditor's machine: no keys dir of the service, only what *env* gives."""
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(tmp_path / "no-keys"))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path / "data"))
    for name in ("SIGNFLOW_TRUST_ROOTS", "SIGNFLOW_BANKID_ROOT", "SIGNFLOW_FREJA_JWS_CERT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def verify_json(capsys, *argv: str) -> tuple[int, dict]:
    code = cli.main(["verify", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


# --- the command line's exit codes -------------------------------------------------------

def test_an_untouched_file_without_the_service_root_is_indeterminate_exit_3(
        demo_run, tmp_path, monkeypatch, capsys, base_url):
    offline(monkeypatch, tmp_path)
    published = f"{base_url}/api/v1/trust-anchors"
    assert cli.main(["verify", str(demo_run.path)]) == 3
    out = capsys.readouterr().out
    assert "NOT VALID" not in out and "INDETERMINATE" in out.splitlines()[-1]
    assert published in out

    code, report = verify_json(capsys, str(demo_run.path))
    assert code == 3
    assert (report["indication"], report["sub_indication"]) == (INDETERMINATE, NO_CHAIN)
    assert report["valid"] is False and len(report["signatures"]) == 5
    for sig in report["signatures"]:
        assert (sig["indication"], sig["sub_indication"]) == (INDETERMINATE, NO_CHAIN)
        assert sig["intact"] is True and sig["trust_anchors_url"] == published
        assert any(published in p for p in sig["problems"])


def test_the_same_file_passes_with_the_root_given_by_trust(demo_run, keys_dir, tmp_path,
                                                           monkeypatch, capsys):
    offline(monkeypatch, tmp_path)
    code, report = verify_json(capsys, str(demo_run.path), "--trust",
                               str(keys_dir / "root-ca.pem"))
    assert code == 0, report
    assert (report["indication"], report["sub_indication"], report["valid"]) == (
        TOTAL_PASSED, None, True)
    assert all(s["indication"] == TOTAL_PASSED and s["trust_anchors_url"] is None
               for s in report["signatures"])


def test_signflow_trust_roots_is_honoured_by_the_cli(demo_run, keys_dir, tmp_path, monkeypatch,
                                                     capsys):
    offline(monkeypatch, tmp_path, SIGNFLOW_TRUST_ROOTS=str(keys_dir / "root-ca.pem"))
    assert cli.main(["verify", str(demo_run.path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("VALID")


def test_the_cli_names_unsigned_fields_and_appended_bytes(demo_run, keys_dir, tmp_path,
                                                          monkeypatch, capsys):
    from tests.test_verify_page import as_signed_by_two

    offline(monkeypatch, tmp_path, SIGNFLOW_TRUST_ROOTS=str(keys_dir / "root-ca.pem"))
    partial = tmp_path / "partial.pdf"
    partial.write_bytes(as_signed_by_two(demo_run.pdf) + b"junk")
    assert cli.main(["verify", str(partial)]) == 0  # what is there holds
    out = capsys.readouterr().out.splitlines()
    assert "- Underskrift3 (Chair) is not signed." in out
    assert any(line.startswith("- The file has 4 bytes after its last revision.") for line in out)
    assert out[-1] == "VALID — Not fully signed: 2 of 3 have signed (TOTAL-PASSED)"


def test_a_tampered_file_fails_with_exit_1(demo_run, keys_dir, tmp_path, monkeypatch, capsys):
    offline(monkeypatch, tmp_path, SIGNFLOW_TRUST_ROOTS=str(keys_dir / "root-ca.pem"))
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(tamper(demo_run.pdf))
    code, report = verify_json(capsys, str(bad))
    assert code == 1
    assert (report["indication"], report["sub_indication"]) == (TOTAL_FAILED, "HASH_FAILURE")
    assert all(s["indication"] == TOTAL_FAILED for s in report["signatures"])


def test_a_tampered_file_fails_even_without_the_root(demo_run, tmp_path, monkeypatch, capsys):
    """Failed beats indeterminate: no missing trust anchor excuses changed content."""
    offline(monkeypatch, tmp_path)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(tamper(demo_run.pdf))
    assert cli.main(["verify", str(bad)]) == 1
    assert "NOT VALID" in capsys.readouterr().out


def test_unusable_input_exits_2(tmp_path, monkeypatch, capsys, protocol_pdf):
    offline(monkeypatch, tmp_path)
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"this is not a PDF at all")
    assert cli.main(["verify", str(junk)]) == 2
    assert "not a PDF" in capsys.readouterr().err
    assert cli.main(["verify", str(tmp_path / "missing.pdf")]) == 2
    assert "cannot read" in capsys.readouterr().err

    code, body = verify_json(capsys, str(junk))
    assert code == 2 and body["indication"] is None and body["error"]["code"] == "not_pdf"

    unsigned = tmp_path / "unsigned.pdf"
    unsigned.write_bytes(protocol_pdf)
    code, report = verify_json(capsys, str(unsigned))
    assert code == 2
    assert report["indication"] is None and report["valid"] is False
    assert report["problems"] == ["the file has no signatures"]

    locked = tmp_path / "locked.pdf"
    with pikepdf.open(io.BytesIO(protocol_pdf)) as pdf:
        pdf.save(locked, encryption=pikepdf.Encryption(owner="owner", user=""))
    assert cli.main(["verify", str(locked)]) == 2
    assert "encrypted" in capsys.readouterr().err


def test_an_unreadable_trust_file_is_a_usage_error(demo_run, tmp_path, monkeypatch, capsys):
    offline(monkeypatch, tmp_path)
    assert cli.main(["verify", str(demo_run.path), "--trust", str(tmp_path / "nope.pem")]) == 2
    assert "nope.pem" in capsys.readouterr().err


# --- one set of trust settings -----------------------------------------------------------

def test_the_api_the_page_and_the_cli_give_the_same_verdict(completed_round, client, settings,
                                                            monkeypatch, capsys, tmp_path):
    _, pdf = completed_round
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    for data, expected, code in ((pdf, TOTAL_PASSED, 0), (tamper(pdf), TOTAL_FAILED, 1)):
        resp = client.post("/api/v1/verify", data={"document": (io.BytesIO(data), "x.pdf")})
        api = resp.get_json()
        path = tmp_path / "file.pdf"
        path.write_bytes(data)
        exit_code, local = verify_json(capsys, str(path))
        assert exit_code == code
        assert api["indication"] == local["indication"] == expected
        assert api["sub_indication"] == local["sub_indication"]
        assert [(s["field"], s["indication"], s["sub_indication"]) for s in api["signatures"]] \
            == [(s["field"], s["indication"], s["sub_indication"]) for s in local["signatures"]]
    page = post_verify(client, pdf)
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('data-indication="TOTAL-PASSED"') == 5


def test_trust_settings_read_the_service_root_the_trust_roots_and_the_providers(
        keys_dir, tmp_path):
    load = x509.load_pem_x509_certificate
    root = load((keys_dir / "root-ca.pem").read_bytes())
    simulator = load((keys_dir / "bankid-sim-ca.pem").read_bytes())
    extra, freja = _self_signed("Commercial Seal CA"), _self_signed("Freja JWS")
    (tmp_path / "extra.pem").write_bytes(_pem(extra))
    (tmp_path / "freja.pem").write_bytes(_pem(freja))

    dev = trust_settings(Settings(keys_dir=keys_dir, trust_roots=str(tmp_path / "extra.pem"),
                                  freja_jws_cert=str(tmp_path / "freja.pem"), dev_mode=True))
    assert dev.anchors == (root, extra)
    bankid = tuple(shipped_certs(BANKID_PRODUCTION_ROOT) + shipped_certs(BANKID_TEST_ROOT))
    assert dev.provider_roots == (*bankid, simulator, freja)

    production = trust_settings(Settings(keys_dir=keys_dir, dev_mode=False))
    assert production.anchors == (root,) and production.provider_roots == bankid

    overridden = trust_settings(Settings(keys_dir=keys_dir, dev_mode=True,
                                         bankid_root=str(tmp_path / "extra.pem")),
                                extra_anchors=[str(tmp_path / "freja.pem")])
    assert overridden.provider_roots == (extra,)  # SIGNFLOW_BANKID_ROOT replaces the defaults
    assert overridden.anchors == (root, freja)

    nothing = trust_settings(Settings(keys_dir=tmp_path / "none"))
    assert nothing.anchors == () and nothing.provider_roots == bankid


def test_the_runtime_verifies_with_the_same_trust_settings(runtime, settings):
    expected = trust_settings(settings)
    assert runtime.trust_settings() == expected
    assert runtime.trust_anchors() == list(expected.anchors)
    assert runtime.provider_roots() == list(expected.provider_roots)


# --- the rules, one by one ---------------------------------------------------------------

def _sig(indication: str, sub: str | None = None, field: str = "s") -> SignatureReport:
    return SignatureReport(
        field=field, kind="approval", signer="Carina Leffler", signer_subject="CN=Carina Leffler",
        signing_time=None, timestamp_time=None, intact=True, trusted=True,
        modification_level="NONE", coverage="ENTIRE_REVISION", docmdp_ok=True,
        transaction_id=None, valid=indication == TOTAL_PASSED, indication=indication,
        sub_indication=sub)


def test_failed_beats_indeterminate_beats_passed():
    passed, unknown = _sig(TOTAL_PASSED), _sig(INDETERMINATE, NO_CHAIN)
    changed, broken = _sig(TOTAL_FAILED, "HASH_FAILURE"), _sig(TOTAL_FAILED, "SIG_CRYPTO_FAILURE")
    assert overall_indication([passed, passed]) == (TOTAL_PASSED, None)
    assert overall_indication([passed, unknown]) == (INDETERMINATE, NO_CHAIN)
    assert overall_indication([unknown, changed, broken]) == (TOTAL_FAILED, "HASH_FAILURE")
    assert overall_indication([]) == (None, None)


def test_the_trust_anchors_address_comes_from_the_service_crl_pointer():
    def url_of(crl: str) -> str | None:
        return _trust_anchors_url(asn1_cert(_self_signed("x", crl=crl)))

    assert url_of("https://sign.example.se/pki/signer-ca.crl") == \
        "https://sign.example.se/api/v1/trust-anchors"
    assert url_of("https://example.se/signflow/pki/root-ca.crl") == \
        "https://example.se/signflow/api/v1/trust-anchors"
    assert url_of("http://crl.other-ca.example/ca.crl") is None
    assert url_of("ldap://example.se/pki/root-ca.crl") is None
    assert _trust_anchors_url(asn1_cert(_self_signed("no pointer"))) is None


# --- the PDF report ----------------------------------------------------------------------

def _long_report() -> VerificationReport:
    sigs = (
        replace(_sig(INDETERMINATE, NO_CHAIN, "Timestamp-e68df4e0-25db-49a8-8a3f-e52b8404b636"),
                signer="Anna-Karin Wåhlberg Östergren-Lindqvist af Ekenstierna " * 2,
                problems=("the certificate does not chain to a trusted root; the service that "
                          "issued it publishes its trust anchors at https://underskrifter."
                          "helsingborg.example.se/api/v1/trust-anchors", "x" * 300),
                trust_anchors_url="https://underskrifter.helsingborg.example.se/api/v1/"
                                  "trust-anchors"),
        _sig(TOTAL_FAILED, "HASH_FAILURE", "Underskrift1"),
    )
    return VerificationReport(valid=False, signatures=sigs, problems=("y" * 250,),
                              sha256="0" * 64, indication=TOTAL_FAILED,
                              sub_indication="HASH_FAILURE")


def _shown_lines(pdf_bytes: bytes) -> list[tuple[float, float, str]]:
    """(left, right, text) of every line drawn, measured with the PDF's own font widths."""
    shown = []
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        for page in pdf.pages:
            fonts = page.Resources.Font
            widths = size = x = None
            for operands, op in pikepdf.parse_content_stream(page):
                if op == pikepdf.Operator("Tf"):
                    font = fonts[str(operands[0])]
                    widths, first, size = list(font.Widths), int(font.FirstChar), \
                        float(operands[1])
                elif op == pikepdf.Operator("Tm"):
                    x = float(operands[4])
                elif op == pikepdf.Operator("Tj"):
                    raw = bytes(operands[0])
                    width = sum(float(widths[b - first]) for b in raw) * size / 1000
                    shown.append((x, x + width, raw.decode("cp1252")))
    return shown


@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_line_of_the_pdf_report_stays_inside_its_margins(language):
    lines = _shown_lines(report_pdf(_long_report(), language))
    assert lines
    for left, right, text in lines:
        assert left >= MARGIN - 0.01 and right <= A4[0] - MARGIN + 0.01, (right, text)
    words = {"sv": ("Ogiltig", "obestämd", "Tjänsten som utfärdade"),
             "en": ("Not valid", "indeterminate", "The service that issued")}[language]
    text = " ".join(t for _, _, t in lines)
    for word in words:
        assert word in text
    assert "HASH_FAILURE" in text and NO_CHAIN in text


# --- sealed evidence: the keys reach the verifier ----------------------------------------

def test_evidence_keys_given_on_the_command_line_reach_the_verifier(
        demo_run, keys_dir, tmp_path, monkeypatch, capsys):
    offline(monkeypatch, tmp_path, SIGNFLOW_TRUST_ROOTS=str(keys_dir / "root-ca.pem"))
    key = serialization.load_pem_private_key((keys_dir / "evidence.key").read_bytes(), None)
    locked = tmp_path / "evidence.key"
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hemligt")))
    assert cli.main(["verify", str(demo_run.path), "--evidence-key", str(locked)]) == 2
    assert "evidence key" in capsys.readouterr().err
    code, report = verify_json(capsys, str(demo_run.path), "--evidence-key", str(locked),
                               "--evidence-key-password", "hemligt")
    assert code == 0, report
    approvals = [s for s in report["signatures"] if s["kind"] == "approval"]
    assert approvals and all(s["evidence"]["opened"] for s in approvals)
    # the password from a file, out of the process list; and at a terminal, asked for
    secret = tmp_path / "password"
    secret.write_text("hemligt\n", encoding="utf-8")
    code, report = verify_json(capsys, str(demo_run.path), "--evidence-key", str(locked),
                               "--evidence-key-password-file", str(secret))
    assert code == 0 and all(s["evidence"]["opened"] for s in report["signatures"]
                             if s["kind"] == "approval")
    asked = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "hemligt")
    code, _ = verify_json(capsys, str(demo_run.path), "--evidence-key", str(locked))
    assert code == 0 and asked == [f"password of {locked}: "]


# --- helpers -----------------------------------------------------------------------------

def _self_signed(cn: str, crl: str | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=1))
               .not_valid_after(now + timedelta(days=1)))
    if crl:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl)], relative_name=None,
            reasons=None, crl_issuer=None)]), critical=False)
    return builder.sign(key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
