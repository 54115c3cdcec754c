"""The signed PDF commits to the round's whole audit trail: the chain head,
timestamped (RFC 3161), under the closing document timestamp."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import replace

from asn1crypto import cms, tsp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from signflow import cli
from signflow.core.audit import canonical_hash, commits_to
from signflow.core.ports import TrailHead
from signflow.pdf import trail_mark
from signflow.pdf.report import report_pdf
from signflow.pdf.verdict_words import plain_verdict
from signflow.pdf.verify import verify_pdf


def audit_of(client, auth, round_id: str) -> dict:
    return client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()


def rewritten(events: list[dict], seq: int, **data) -> list[dict]:
    """*events* with event *seq*'s data changed and every hash after it recomputed:
    a consistent chain, but not the one that happened."""
    out, prev = [], None
    for event in events:
        event = dict(event)
        if event["seq"] == seq:
            event["data"] = {**event["data"], **data}
        if prev is not None:
            event["prev_hash"] = prev
        event["hash"] = canonical_hash(event)
        prev = event["hash"]
        out.append(event)
    return out


def test_the_final_pdf_commits_to_the_trail_as_it_stood_at_the_last_signature(
        completed_round, client, auth, runtime):
    body, pdf = completed_round
    audit = audit_of(client, auth, body["id"])
    events = audit["events"]
    completed = [e for e in events if e["type"] == "round.completed"][0]
    seq, head = completed["data"]["trail_seq"], completed["data"]["trail_head"]
    # every signature was recorded before the committed head
    assert max(e["seq"] for e in events if e["type"] == "signer.signed") <= seq < completed["seq"]
    assert events[seq - 1]["hash"] == head and commits_to(events, seq, head)

    report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots())
    assert report.valid
    trail = report.audit_trail
    assert trail is not None and trail.problems == ()
    assert (trail.seq, trail.head) == (seq, head)
    assert trail.timestamp_valid and trail.timestamped_at
    # the earlier signatures allow the metadata update: their verdicts are unchanged
    assert {s.modification_level for s in report.signatures} <= {"FORM_FILLING",
                                                                  "LTA_UPDATES"}

    token = trail_mark.read(PdfFileReader(io.BytesIO(pdf)),
                            report_revision(pdf)).token  # type: ignore[union-attr]
    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert isinstance(info, tsp.TSTInfo)
    assert info["message_imprint"]["hashed_message"].native == bytes.fromhex(head)


def report_revision(pdf: bytes) -> int:
    """The revision the first document timestamp covers."""
    reader = PdfFileReader(io.BytesIO(pdf))
    return next(s.signed_revision for s in reader.embedded_signatures
                if s.sig_object.get("/Type") == "/DocTimeStamp")


def test_the_service_checks_the_head_against_its_records(completed_round, client, auth):
    body, pdf = completed_round
    resp = client.post("/api/v1/verify", headers=auth,
                       data={"document": (io.BytesIO(pdf), "p.pdf")})
    assert resp.status_code == 200
    got = resp.get_json()
    assert got["audit_trail"]["timestamp_valid"] is True
    assert got["round"]["audit_trail_matches"] is True
    assert got["audit_trail"]["matches_trail"] is True  # one answer, in both places
    # an anonymous caller learns that the file commits to a trail, not whose
    anonymous = client.post("/api/v1/verify", data={"document": (io.BytesIO(pdf), "p.pdf")})
    assert "round" not in anonymous.get_json()
    assert anonymous.get_json()["audit_trail"]["matches_trail"] is None


def test_an_auditor_holds_the_pdf_to_a_trail_offline(completed_round, client, auth, tmp_path,
                                                     keys_dir, monkeypatch, capsys):
    body, pdf = completed_round
    audit = audit_of(client, auth, body["id"])
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    kept = tmp_path / "audit.json"
    kept.write_text(json.dumps(audit))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))

    assert cli.main(["verify", str(path), "--audit", str(kept)]) == 0
    said = capsys.readouterr().out
    assert "commits to the round's audit trail up to event" in said
    assert "The audit trail supplied matches it." in said

    # a trail rewritten before the committed head, consistently re-hashed, is caught
    seq = audit_of(client, auth, body["id"])["events"][-1]["data"]["trail_seq"]
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**audit, "events": rewritten(
        audit["events"], 1, title="Ett annat protokoll")}))
    assert cli.main(["verify", str(path), "--audit", str(changed), "--json"]) == 1
    said = capsys.readouterr()
    verdict = json.loads(said.out)
    assert verdict["audit_trail"]["matches_trail"] is False
    assert "the audit trail supplied does not match" in said.err  # and a script sees exit 1
    assert verdict["audit_trail"]["seq"] == seq
    # a change after the committed head (the completion's own event) is not the PDF's to judge
    later = tmp_path / "later.json"
    later.write_text(json.dumps({**audit, "events": rewritten(
        audit["events"], seq + 1, note="added later")}))
    assert cli.main(["verify", str(path), "--audit", str(later), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit_trail"]["matches_trail"] is True

    broken = tmp_path / "broken.json"
    broken.write_text('{"events": "none"}')
    assert cli.main(["verify", str(path), "--audit", str(broken)]) == 2
    assert "no list of audit events" in capsys.readouterr().err


def test_the_evidence_zip_carries_the_trail_the_pdf_is_held_to(completed_round, client,
                                                               runtime, tmp_path, keys_dir,
                                                               monkeypatch, capsys):
    from tests.conftest import make_user

    body, pdf = completed_round
    auditor = {"Authorization": "Bearer " + make_user(runtime, "revisor@example.se", "auditor")}
    resp = client.get(f"/api/v1/rounds/{body['id']}/evidence", headers=auditor)
    assert resp.status_code == 200
    (tmp_path / "evidence.zip").write_bytes(resp.data)
    (tmp_path / "signed.pdf").write_bytes(pdf)
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    assert cli.main(["verify", str(tmp_path / "signed.pdf"), "--evidence-zip",
                     str(tmp_path / "evidence.zip"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit_trail"]["matches_trail"] is True


def test_a_head_written_after_the_closing_timestamp_does_not_count(completed_round, runtime):
    """XMP may change after a signature; a later revision naming another head must
    not replace the one the document timestamp covers."""
    _, pdf = completed_round
    reader = PdfFileReader(io.BytesIO(pdf))
    covered = trail_mark.read(reader, report_revision(pdf))
    assert covered is not None
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    forged = TrailHead(covered.seq + 5, "ab" * 32)
    trail_mark.write(writer, forged, covered.token)
    out = io.BytesIO()
    writer.write(out)
    report = verify_pdf(out.getvalue(), runtime.trust_anchors(), runtime.provider_roots())
    assert report.audit_trail is not None
    assert (report.audit_trail.seq, report.audit_trail.head) == (covered.seq, covered.head)


def test_a_head_no_document_timestamp_covers_is_reported_unproven(protocol_pdf, runtime):
    """A mark no document timestamp covers is named, as not proven and why; one that
    is covered but whose token is over another head is not proven either."""
    from pyhanko.sign import signers

    from signflow.pdf.keys import timestamp_token_for

    svc = runtime.services
    wrong = timestamp_token_for(svc.pdf.timestamper, b"\x01" * 32)  # over another head
    head = TrailHead(3, "cd" * 32)
    writer = IncrementalPdfFileWriter(io.BytesIO(protocol_pdf))
    trail_mark.write(writer, head, wrong)
    out = io.BytesIO()
    writer.write(out)
    uncovered = verify_pdf(out.getvalue(), runtime.trust_anchors(),
                           runtime.provider_roots()).audit_trail
    assert uncovered is not None and not uncovered.timestamp_valid
    assert uncovered.problems == ("the audit trail named in the file is not covered by a "
                                  "document timestamp",)
    words = plain_verdict(verify_pdf(out.getvalue(), runtime.trust_anchors()), "sv").trail
    assert words[0].startswith("Filen anger ett huvud för omgångens händelselogg") and \
        "inte bevisat" in words[0]  # never "commits to" for a head nothing proves
    assert not any("binder" in w for w in words)

    writer = IncrementalPdfFileWriter(io.BytesIO(protocol_pdf))
    trail_mark.write(writer, head, wrong)
    stamped = signers.PdfTimeStamper(svc.pdf.timestamper).timestamp_pdf(writer, "sha256")
    covered = verify_pdf(stamped.getvalue(), runtime.trust_anchors()).audit_trail
    assert covered is not None and not covered.timestamp_valid
    assert any("not over the head" in p for p in covered.problems)


def test_the_page_and_the_pdf_report_say_what_the_file_commits_to(completed_round, runtime):
    _, pdf = completed_round
    report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots())
    assert report.audit_trail is not None
    matched = replace(report, audit_trail=replace(report.audit_trail, matches_trail=True))
    sv = plain_verdict(matched, "sv").trail
    assert sv[0].startswith("Filen binder omgångens händelselogg fram till händelse "
                            f"{report.audit_trail.seq} ")
    assert sv[-1] == "Händelseloggen som lämnades med stämmer med den."
    text = subprocess.run(["pdftotext", "-", "-"], input=report_pdf(matched, "en"),
                          capture_output=True, check=True).stdout.decode()
    assert "commits to the round's audit trail" in " ".join(text.split())


def test_the_commitment_still_holds_after_the_tsa_certificate_has_expired(
        completed_round, runtime):
    """Judged as of the document timestamp over it, as a protocol is read decades on."""
    from datetime import UTC, datetime, timedelta

    _, pdf = completed_round
    tsa_expires = runtime.services.pdf.pki.tsa.cert.not_valid_after_utc
    later = max(datetime.now(UTC) + timedelta(days=365 * 15), tsa_expires + timedelta(days=1))
    trail = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots(),
                       at=later).audit_trail
    assert trail is not None and trail.timestamp_valid, trail


def test_renewal_keeps_the_commitment(completed_round, runtime):
    from signflow.pdf import sign as _sign

    _, pdf = completed_round
    svc = runtime.services
    renewed = _sign.renew(pdf, pki=svc.pdf.pki, timestamper=svc.pdf.timestamper)
    before = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots()).audit_trail
    after = verify_pdf(renewed, runtime.trust_anchors(), runtime.provider_roots()).audit_trail
    assert after is not None and after == before


def test_metadata_that_inflates_past_the_bound_is_not_read(protocol_pdf):
    """A hostile file's XMP is not inflated beyond trail_mark.MAX_XMP (nor, in any
    other filter, at all): the verifier's memory is not the file's to take."""
    import zlib

    import pikepdf

    pdf = pikepdf.open(io.BytesIO(protocol_pdf))
    ns = trail_mark.NS
    xmp = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
           f'"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:t="{ns}" '
           f't:Seq="1" t:Head="{"ab" * 32}" t:HeadTimestamp="AAAA"/></rdf:RDF></x:xmpmeta>')
    for body, fits in ((xmp.encode(), True),
                       (xmp.encode() + b" " * (trail_mark.MAX_XMP + 1), False)):
        stream = pikepdf.Stream(pdf, zlib.compress(body))
        stream.Filter = pikepdf.Name.FlateDecode
        pdf.Root.Metadata = pdf.make_indirect(stream)
        out = io.BytesIO()  # written as it is (pikepdf would rewrite the XMP)
        pdf.save(out, fix_metadata_version=False, compress_streams=False,
                 stream_decode_level=pikepdf.StreamDecodeLevel.none)
        reader = PdfFileReader(io.BytesIO(out.getvalue()))
        mark = trail_mark.read(reader, reader.xrefs.total_revisions - 1)
        assert (mark is not None) == fits


def test_a_keys_folder_found_beside_the_file_is_not_trusted_and_nothing_is_written(
        completed_round, tmp_path, keys_dir, monkeypatch, capsys):
    """The archivist's review: `signflow verify` in a folder that came with the PDF
    trusted the keys/root-ca.pem in it, so whoever handed over the folder chose the
    root; and it left an instance/secret_key behind on the auditor's machine."""
    _, pdf = completed_round
    handed_over = tmp_path / "handed-over"
    shutil.copytree(keys_dir, handed_over / "keys")  # a root "of the sender's"
    (handed_over / "signed.pdf").write_bytes(pdf)
    monkeypatch.chdir(handed_over)
    for name in ("SIGNFLOW_KEYS_DIR", "SIGNFLOW_DATA_DIR", "SIGNFLOW_TRUST_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    before = sorted(p.relative_to(handed_over) for p in handed_over.rglob("*"))

    assert cli.main(["verify", "signed.pdf"]) == 3  # cannot be determined: no anchor
    said = capsys.readouterr()
    assert "keys/root-ca.pem was not trusted" in said.err and "--trust" in said.err
    assert cli.main(["verify", "signed.pdf", "--trust", "keys/root-ca.pem"]) == 0
    assert sorted(p.relative_to(handed_over) for p in handed_over.rglob("*")) == before
    # the operator's own keys dir, set in the environment, is trusted as before
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(keys_dir))
    assert cli.main(["verify", "signed.pdf"]) == 0


def test_no_note_to_trust_a_root_that_was_trusted(completed_round, tmp_path, keys_dir,
                                                  monkeypatch, capsys):
    """Judged past its validation data with --trust keys/root-ca.pem, the file is
    INDETERMINATE for that reason; the note must not say to add that --trust."""
    _, pdf = completed_round
    here = tmp_path / "here"
    shutil.copytree(keys_dir, here / "keys")
    (here / "signed.pdf").write_bytes(pdf)
    monkeypatch.chdir(here)
    for name in ("SIGNFLOW_KEYS_DIR", "SIGNFLOW_DATA_DIR", "SIGNFLOW_TRUST_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["verify", "signed.pdf", "--at", "2031-01-01",
                     "--trust", "keys/root-ca.pem"]) == 3
    said = capsys.readouterr()
    assert "was not trusted" not in said.err
    assert "the validation data in the file reaches to" in said.out
