"""Keeping signed documents verifiable: LTA renewal."""

import hashlib

from sqlalchemy import select

from signflow import cli
from signflow.core.models import Document
from signflow.pdf.verify import verify_pdf
from tests.conftest import SERVICES


def test_lta_renew_adds_a_document_timestamp(completed_round, client, auth, runtime,
                                             settings, monkeypatch, capsys):
    body, before = completed_round
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SIGNFLOW_BASE_URL", settings.base_url)
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")  # the dev TSA renews
    monkeypatch.setenv("SIGNFLOW_SECRET_KEY", settings.secret_key)  # as the service's
    if SERVICES:
        monkeypatch.setenv("SIGNFLOW_REDIS_URL", settings.redis_url)
        monkeypatch.setenv("SIGNFLOW_RQ_QUEUE", settings.rq_queue)
    from tests.test_webhooks import Receiver, as_described, register

    receiver = Receiver()  # an archive that wants the renewed copy
    register(client, auth, receiver.url, events=["document.renewed"])
    # nothing is due yet
    assert cli.main(["lta", "renew", "--days", "30"]) == 0
    assert "0 document(s)" in capsys.readouterr().out
    assert cli.main(["lta", "renew", "--round", "no-such-round"]) == 2
    assert "no completed round no-such-round" in capsys.readouterr().err
    assert cli.main(["lta", "renew", "--round", body["id"]]) == 0
    import time

    deadline = time.monotonic() + 60
    after = before
    while after == before and time.monotonic() < deadline:
        after = client.get(f"/api/v1/rounds/{body['id']}/document", headers=auth).data
        time.sleep(0.1)
    assert after != before and after.startswith(before)  # an incremental update
    report = verify_pdf(after, runtime.trust_anchors(), runtime.provider_roots())
    assert report.valid
    assert [s.kind for s in report.signatures].count("timestamp") == 2
    events = client.get(f"/api/v1/rounds/{body['id']}/audit", headers=auth).get_json()
    assert events["events"][-1]["type"] == "document.renewed"
    assert events["intact"]
    with runtime.sessions() as s:
        kinds = [d.kind for d in s.scalars(select(Document).where(
            Document.round_id == body["id"]))]
    assert kinds.count("final") == 2
    try:  # the archive is told, with where to fetch it
        receiver.wait_for(1)
        [told] = [as_described(g["body"]) for g in receiver.got]
        assert told["event"] == "document.renewed"
        assert told["data"]["sha256"] == hashlib.sha256(after).hexdigest()
        assert told["data"]["previous_sha256"] == hashlib.sha256(before).hexdigest()
        assert told["data"]["document"].endswith(f"/api/v1/rounds/{body['id']}/document")
    finally:
        receiver.server.shutdown()


def test_renewal_due_after_the_window(completed_round, runtime):
    from datetime import timedelta

    from signflow.core.housekeeping import rounds_due_for_renewal
    from signflow.core.models import utcnow

    body, _ = completed_round
    with runtime.sessions() as s:
        assert rounds_due_for_renewal(s, utcnow() - timedelta(days=1)) == []
        assert body["id"] in rounds_due_for_renewal(s, utcnow() + timedelta(days=1))


def test_round_with_tsa_over_http(settings, live_server, protocol_pdf, worker):
    """SIGNFLOW_TSA_URL pointing at an RFC 3161 service over HTTP (our dev TSA endpoint).

    (In the RQ pass the worker process keeps its own configuration: there the
    certification uses the HTTP TSA and the approvals the in-process one.)
    """
    from signflow import create_app
    from tests.conftest import (
        create_round,
        make_user,
        runtime_for_tests,
        sign_all,
        signers_spec,
        wait_for_status,
    )

    settings = settings.with_overrides(tsa_url=f"{live_server}/tsa")
    rt = runtime_for_tests(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "tsa@example.se")}
        signers = signers_spec()
        round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
        sign_all(client, rt, settings, signers)
        wait_for_status(client, auth, round_id, "completed")
        pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
        report = verify_pdf(pdf, rt.trust_anchors(), rt.provider_roots())
        assert report.valid and all(s.timestamp_time for s in report.signatures)
    finally:
        rt.close()


def test_tsa_endpoint_refuses_garbage(client):
    resp = client.post("/tsa", data=b"junk", content_type="application/timestamp-query")
    assert resp.status_code == 400
    resp = client.post("/tsa", data=b"junk", content_type="text/plain")
    assert resp.status_code == 400


def test_still_valid_long_after_the_signer_certificates_expired(completed_round, runtime):
    """Per-act certificates live one day; the file's own validation data carries them."""
    from datetime import UTC, datetime, timedelta

    from signflow.pdf.pki import SIGNER_CERT_VALIDITY

    _, pdf = completed_round
    assert SIGNER_CERT_VALIDITY <= timedelta(days=1)
    for days in (2, 300):
        at = datetime.now(UTC) + timedelta(days=days)
        report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots(), at=at)
        assert report.valid, (days, [(s.field, s.problems) for s in report.signatures])
        for s in report.signatures:
            if s.kind != "timestamp":
                assert s.ades_indication == "PASSED"


def test_cli_verify_as_of_a_future_date(completed_round, tmp_path, keys_dir, monkeypatch,
                                        capsys):
    from signflow import cli

    _, pdf = completed_round
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    from datetime import UTC, datetime, timedelta

    later = (datetime.now(UTC) + timedelta(days=200)).date().isoformat()
    assert cli.main(["verify", str(path), "--at", later]) == 0
    assert "long-term=PASSED" in capsys.readouterr().out
    assert cli.main(["verify", str(path), "--at", "not-a-date"]) == 2


def test_ocsp_responder_answers_for_our_certificates(completed_round, client, keys_dir):
    """The test PKI has OCSP: the responder answers 'good', and the signer's response
    is embedded in the PDF's validation data."""
    import io

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp
    from pyhanko.pdf_utils.reader import PdfFileReader

    from signflow.pdf.pki import load_pki

    _, pdf = completed_round
    sig = next(s for s in PdfFileReader(io.BytesIO(pdf)).embedded_signatures
               if str(s.field_name) == "Underskrift1")
    cert = x509.load_der_x509_certificate(sig.signer_cert.dump())
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    embedded = [ocsp.load_der_ocsp_response(ref.get_object().data) for ref in dss.ocsps]
    assert cert.serial_number in {r.serial_number for r in embedded}
    signer_ca = load_pki(keys_dir).signer_ca.cert
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, signer_ca, hashes.SHA256()).build()
    resp = client.post("/pki/ocsp", data=req.public_bytes(serialization.Encoding.DER),
                       content_type="application/ocsp-request")
    assert resp.status_code == 200 and resp.mimetype == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(resp.data)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == cert.serial_number
    from cryptography.hazmat.primitives.asymmetric import ec

    signer_ca.public_key().verify(answer.signature, answer.tbs_response_bytes,
                                  ec.ECDSA(hashes.SHA256()))
    bad = client.post("/pki/ocsp", data=b"junk", content_type="application/ocsp-request")
    assert ocsp.load_der_ocsp_response(bad.data).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
