"""A signed protocol is a public document: no personal number can be read from it,
yet the sealed evidence opens with the organisation's key and proves everything."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import shutil
import subprocess
import zipfile

import pikepdf
import pytest
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader

from signflow.adapters.bankid_sim import PERSONAS
from signflow.pdf.evidence import read_evidence, read_sealed
from signflow.pdf.pki import EVIDENCE
from signflow.pdf.verify import verify_pdf
from tests.conftest import create_round, make_user, sign_all, signers_spec, wait_for_status

HEX = re.compile(rb"<([0-9A-Fa-f\s]{16,})>")
BASE64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def variants(number: str) -> list[bytes]:
    """The ways a personal number may be written: 12 or 10 digits, with a hyphen, UTF-16."""
    forms = {number, number[2:], f"{number[:8]}-{number[8:]}", f"{number[2:8]}-{number[8:]}"}
    return [f.encode(enc) for f in forms for enc in ("ascii", "utf-16-be")]


def layers(blob: bytes, depth: int = 0):
    """*blob* and what hex strings and base64 runs inside it decode to, a few layers deep."""
    yield blob
    if depth >= 4:
        return
    for m in HEX.finditer(blob):
        try:
            yield from layers(binascii.unhexlify(re.sub(rb"\s", b"", m.group(1))), depth + 1)
        except (binascii.Error, ValueError):
            pass
    for m in BASE64.finditer(blob):
        run = m.group(0)
        try:
            yield from layers(base64.b64decode(run + b"=" * (-len(run) % 4)), depth + 1)
        except (binascii.Error, ValueError):
            pass


def pdf_blobs(pdf: bytes):
    """The file itself, every decoded stream and every string object."""
    yield pdf
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for obj in doc.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    yield obj.read_bytes()
                except pikepdf.PdfError:
                    yield obj.read_raw_bytes()
            elif isinstance(obj, pikepdf.String):
                yield bytes(obj)
            elif isinstance(obj, pikepdf.Dictionary):
                for value in obj.values():
                    if isinstance(value, pikepdf.String):
                        yield bytes(value)


def personal_numbers_in(blobs, numbers: list[str]) -> set[str]:
    found = set()
    for blob in blobs:
        for layer in layers(blob):
            for number in numbers:
                if any(v in layer for v in variants(number)):
                    found.add(number)
    return found


NUMBERS = [p.personal_number for p in PERSONAS]


@pytest.fixture
def round_with_numbers(client, auth, runtime, settings, protocol_pdf):
    """A completed round whose signers were all invited by personal number."""
    signers = signers_spec()
    for spec, p in zip(signers, PERSONAS, strict=True):
        spec["personal_number"] = p.personal_number
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    sign_all(client, runtime, settings, signers)
    body = wait_for_status(client, auth, round_id, "completed")
    return body, client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data


def test_the_scan_finds_personal_numbers_where_they_are(client, runtime, round_with_numbers):
    """The scan is not blind: the auditors' ZIP holds BankID's XML, with every number."""
    body, _ = round_with_numbers
    auditor = {"Authorization": "Bearer " + make_user(runtime, "arkiv@example.se", "auditor")}
    zipped = client.get(f"/api/v1/rounds/{body['id']}/evidence", headers=auditor).data
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        xml_only = [json.loads(zf.read(n))["completion"]["signature"].encode()
                    for n in zf.namelist() if n.startswith("bankid/")]
    assert personal_numbers_in(xml_only, NUMBERS) == set(NUMBERS)  # inside base64 → XML → DER


def test_no_personal_number_can_be_read_from_the_signed_pdf(round_with_numbers):
    _, pdf = round_with_numbers
    assert personal_numbers_in(pdf_blobs(pdf), NUMBERS) == set()


def approvals(pdf: bytes):
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return [s for s in reader.embedded_signatures if read_evidence(s.signer_info)]


def test_the_evidence_is_sealed_and_its_summary_public(round_with_numbers, keys_dir):
    _, pdf = round_with_numbers
    sigs = approvals(pdf)
    assert len(sigs) == 3
    for sig in sigs:
        public = read_evidence(sig.signer_info)
        assert public["format"] == 2 and public["identityCheck"] == "personal_number"
        assert "signature" not in public and "ocspResponse" not in public
        assert set(public["user"]) == {"name", "givenName", "surname"}
        assert public["sealed"]["recipients"] and read_sealed(sig.signer_info)


def test_openssl_opens_the_sealed_evidence_with_the_evidence_key(round_with_numbers, keys_dir,
                                                                  tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("LOUD SKIP: the openssl command is missing, so the envelope is not "
                    "checked by an independent CMS implementation")
    _, pdf = round_with_numbers
    sealed = tmp_path / "sealed.der"
    sealed.write_bytes(read_sealed(approvals(pdf)[0].signer_info))
    out = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(sealed),
                          "-inkey", str(keys_dir / f"{EVIDENCE}.key")],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    doc = json.loads(out.stdout)
    assert doc["completion"]["user"]["personalNumber"] in NUMBERS
    assert doc["completion"]["signature"] and doc["completion"]["ocspResponse"]


def test_verifier_reports_sealed_evidence_without_the_key_and_checks_it_with(
        round_with_numbers, runtime, keys_dir):
    _, pdf = round_with_numbers
    roots = runtime.trust_anchors()
    sealed = verify_pdf(pdf, roots, runtime.provider_roots())
    assert sealed.valid
    for sig in (s for s in sealed.signatures if s.kind == "approval"):
        ev = sig.evidence
        assert ev.sealed and ev.sealed_intact and not ev.opened
        assert ev.provider_signature_valid is None and ev.matches_document
        assert ev.identity_check == "personal_number"

    key = (keys_dir / f"{EVIDENCE}.key").read_bytes()
    opened = verify_pdf(pdf, roots, runtime.provider_roots(), evidence_keys=[key])
    assert opened.valid
    for sig in (s for s in opened.signatures if s.kind == "approval"):
        assert sig.evidence.opened and sig.evidence.provider_signature_valid is True


def test_a_key_that_is_not_a_recipient_leaves_it_sealed(round_with_numbers, runtime):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    _, pdf = round_with_numbers
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots(),
                        evidence_keys=[stranger])
    assert report.valid
    assert all(not s.evidence.opened for s in report.signatures if s.evidence)


def _recipient(cn: str):
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert


def test_evidence_sealed_to_several_recipients_opens_with_each_of_their_keys():
    from signflow.pdf import envelope

    (archive_key, archive), (service_key, service) = _recipient("Arkivet"), _recipient("Tjänsten")
    sealed = envelope.seal(b'{"personalNumber":"196911302385"}', [archive, service])
    assert b"196911302385" not in sealed
    info = envelope.inspect(sealed)
    assert len(info.recipients) == 2 and "Arkivet" in info.recipients[0]
    for key in (archive_key, service_key):
        assert envelope.open_sealed(sealed, [key]) == b'{"personalNumber":"196911302385"}'
    stranger, _ = _recipient("Någon annan")
    assert envelope.open_sealed(sealed, [stranger]) is None
    with pytest.raises(envelope.EnvelopeError):
        envelope.inspect(b"not DER at all")


def test_an_organisation_seals_its_evidence_to_its_own_archive_too(
        client, auth, runtime, settings, protocol_pdf, tmp_path, capsys, monkeypatch):
    from cryptography.hazmat.primitives.serialization import Encoding

    from signflow import cli
    from signflow.pdf import envelope

    archive_key, archive = _recipient("Kommunarkivet")
    pem = tmp_path / "arkiv.pem"
    pem.write_bytes(archive.public_bytes(Encoding.PEM))
    for name, value in (("DATABASE_URL", settings.database_url),
                        ("KEYS_DIR", str(settings.keys_dir)), ("SECRET_KEY", "test-secret")):
        monkeypatch.setenv(f"SIGNFLOW_{name}", value)
    assert cli.main(["orgs", "evidence-certs", "Nowhere", str(pem)]) == 2  # no such organisation
    assert cli.main(["orgs", "evidence-certs", "Familjen Helsingborg", str(pem)]) == 0
    assert "Kommunarkivet" in capsys.readouterr().out

    signers = signers_spec()[:1]
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    sign_all(client, runtime, settings, signers)
    wait_for_status(client, auth, round_id, "completed")
    pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    (sig,) = approvals(pdf)
    sealed = read_sealed(sig.signer_info)
    recipients = envelope.inspect(sealed).recipients
    assert len(recipients) == 2 and any("Kommunarkivet" in r for r in recipients)
    assert b"completion" in envelope.open_sealed(sealed, [archive_key])


def test_the_evidence_zip_checks_sealed_evidence_as_a_key_would(client, runtime,
                                                                round_with_numbers, tmp_path,
                                                                keys_dir, capsys, monkeypatch):
    from signflow import cli

    body, pdf = round_with_numbers
    auditor = {"Authorization": "Bearer " + make_user(runtime, "zip@example.se", "auditor")}
    zipped = tmp_path / "evidence.zip"
    zipped.write_bytes(client.get(f"/api/v1/rounds/{body['id']}/evidence", headers=auditor).data)
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(pdf)
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path / "data"))
    # a development installation: its BankID evidence chains to the simulator's root,
    # which only development mode trusts
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")

    def approvals_of(*extra: str) -> list[dict]:
        code = cli.main(["verify", str(signed), "--json", *extra])
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        return [s["evidence"] for s in report["signatures"] if s["kind"] == "approval"]

    assert all(e["sealed"] and not e["opened"] for e in approvals_of())
    for ev in approvals_of("--evidence-zip", str(zipped)):
        assert ev["opened"] and ev["provider_signature_valid"] is True and not ev["problems"]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    assert cli.main(["verify", str(signed), "--evidence-zip", str(bad)]) == 2
