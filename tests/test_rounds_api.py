"""A round through the HTTP API: creation, access, refusals, decline, cancel."""

import io
import json
import re
import time
import zipfile

import pytest
from sqlalchemy import func, select

from signflow.core.audit import verify_chain
from signflow.core.models import Document, Round
from signflow.demo import links_in_outbox, sign_over_http
from tests.conftest import approve_with, create_round, make_user, signers_spec, wait_for_mail
from tests.test_audit_chain import outsider_hash


def counts(runtime):
    with runtime.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Round)),
                s.scalar(select(func.count()).select_from(Document)))


def test_create_round(client, auth, protocol_pdf, settings):
    resp = create_round(client, auth, protocol_pdf)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "pending"
    assert len(body["document_sha256"]) == 64
    assert [s["role"] for s in body["signers"]] == ["sekreterare", "justerare", "ordforande"]
    assert {s["status"] for s in body["signers"]} == {"invited"}
    mails = [m for m in links_in_outbox(settings.data_dir / "outbox")]
    assert {s["email"] for s in body["signers"]} <= set(mails)
    doc = client.get(f"/api/v1/rounds/{body['id']}/document", headers=auth)
    assert doc.status_code == 200 and doc.data.startswith(b"%PDF-")
    import hashlib
    assert hashlib.sha256(doc.data).hexdigest() == body["document_sha256"]


def test_sequential_round_invites_one_at_a_time(client, auth, protocol_pdf):
    body = create_round(client, auth, protocol_pdf, order="sequential").get_json()
    assert [s["status"] for s in body["signers"]] == ["invited", "waiting", "waiting"]


def test_no_token_is_401(client, protocol_pdf):
    resp = create_round(client, {}, protocol_pdf)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/rounds").status_code == 401
    bad = client.get("/api/v1/rounds", headers={"Authorization": "Bearer sf_nope"})
    assert bad.status_code == 401


def test_other_organisation_sees_404(client, auth, runtime, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    other = {"Authorization": "Bearer " + make_user(runtime, "x@other.se", org="Annan kommun")}
    for path in ("", "/document", "/audit", "/evidence"):
        assert client.get(f"/api/v1/rounds/{round_id}{path}", headers=other).status_code == 404
    assert client.post(f"/api/v1/rounds/{round_id}/cancel", headers=other).status_code == 404
    assert client.get("/api/v1/rounds", headers=other).get_json()["rounds"] == []


def test_auditor_reads_but_cannot_start(client, runtime, protocol_pdf):
    auditor = {"Authorization": "Bearer " + make_user(runtime, "rev@example.se", role="auditor")}
    assert create_round(client, auditor, protocol_pdf).status_code == 403
    assert client.get("/api/v1/rounds", headers=auditor).status_code == 200


@pytest.mark.parametrize("payload,status", [
    (b"hello, not a pdf", 415),
    (b"%PDF-1.7\n garbage without structure", 422),
    (b"", 415),
])
def test_bad_upload_is_refused_and_nothing_stored(client, auth, runtime, payload, status):
    before = counts(runtime)
    resp = client.post("/api/v1/rounds", headers=auth, data={
        "round": json.dumps({"title": "t", "signers": signers_spec()}),
        "document": (io.BytesIO(payload), "x.pdf")})
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"]["message"]
    assert counts(runtime) == before


def test_a_pdf_cut_short_anywhere_is_refused_and_nothing_stored(client, auth, runtime,
                                                                protocol_pdf):
    before = counts(runtime)
    for cut in range(100, len(protocol_pdf) - 5, 307):
        resp = client.post("/api/v1/rounds", headers=auth, data={
            "round": json.dumps({"title": "t", "signers": signers_spec()}),
            "document": (io.BytesIO(protocol_pdf[:cut]), "p.pdf")})
        assert resp.status_code in (415, 422), (cut, resp.get_json())
        assert resp.get_json()["error"]["code"] in ("not_pdf", "unparsable"), cut
    assert counts(runtime) == before


def test_encrypted_pdf_is_refused(client, auth, runtime, protocol_pdf):
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(protocol_pdf))
    buf = io.BytesIO()
    pdf.save(buf, encryption=pikepdf.Encryption(owner="o", user="u"))
    resp = create_round(client, auth, buf.getvalue())
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "encrypted"


def test_signed_pdf_is_refused(client, auth, completed_round):
    _, pdf = completed_round
    resp = create_round(client, auth, pdf)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "already_signed"


@pytest.mark.parametrize("round_field", [
    "not json", json.dumps({"title": "t"}), json.dumps([1, 2]),
    json.dumps({"title": "t", "signers": [{"name": "a", "email": "a@b.se",
                                          "role": "justerare", "personal_number": "123"}]}),
])
def test_bad_round_json_is_400(client, auth, runtime, protocol_pdf, round_field):
    before = counts(runtime)
    resp = client.post("/api/v1/rounds", headers=auth, data={
        "round": round_field, "document": (io.BytesIO(protocol_pdf), "p.pdf")})
    assert resp.status_code == 400
    assert counts(runtime) == before


def _spec(**changes) -> str:
    """A round's JSON with the first signer changed, written by hand: *changes* may hold
    escapes JSON allows and Python's json.dumps would never write (a lone ``\\ud800``)."""
    people = signers_spec()
    body = json.dumps({"title": "Protokoll", "signers": people})
    for key, raw in changes.items():
        if key == "title":
            body = body.replace('"title": "Protokoll"', f'"title": {raw}')
        else:
            body = body.replace(f'"{key}": {json.dumps(people[0][key])}', f'"{key}": {raw}', 1)
    return body


@pytest.mark.parametrize(("field", "raw", "code_or_field"), [
    ("title", '"Protokoll\\r\\nBcc: x@example.se"', "title"),  # a mail header injected
    ("title", '"a\\ud800b"', None),  # a lone surrogate: not text
    ("name", '"Mikael\\u0000 Johansson"', "name"),
    ("email", '"sek\\u0000@example.se"', "email"),
    ("organisation", '"Familjen\\nHelsingborg"', "organisation"),
])
def test_text_that_is_not_one_line_of_text_is_400(client, auth, runtime, protocol_pdf, field,
                                                   raw, code_or_field):
    before = counts(runtime)
    resp = client.post("/api/v1/rounds", headers=auth, data={
        "round": _spec(**{field: raw}), "document": (io.BytesIO(protocol_pdf), "p.pdf")})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"].get("field") == code_or_field
    assert counts(runtime) == before


def test_a_message_may_have_lines(client, auth, protocol_pdf):
    resp = create_round(client, auth, protocol_pdf, message="Hej!\n\nSignera gärna i dag.")
    assert resp.status_code == 201, resp.get_json()


def test_one_person_signs_once(client, auth, runtime, protocol_pdf):
    before = counts(runtime)
    twice = signers_spec()
    twice[2]["email"] = twice[0]["email"].upper()
    resp = create_round(client, auth, protocol_pdf, signers=twice)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "signer_twice"
    assert resp.get_json()["error"]["field"] == "email"
    same_number = signers_spec()
    same_number[0]["personal_number"] = "19800101-2387"
    same_number[1]["personal_number"] = "198001012387"
    resp = create_round(client, auth, protocol_pdf, signers=same_number)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "personal_number"
    assert counts(runtime) == before
    # nor by replacement: the chair cannot take the justerare's place as well
    people = signers_spec()
    people[2]["personal_number"] = "19800101-2387"
    body = create_round(client, auth, protocol_pdf, signers=people).get_json()
    target = body["signers"][1]["id"]
    for person in ({"name": "Carina Leffler", "email": people[2]["email"]},
                   {"name": "C. Leffler", "email": "annan@example.se",
                    "personal_number": "198001012387"}):
        resp = client.post(f"/api/v1/rounds/{body['id']}/signers/{target}/replace",
                           headers=auth, json=person)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "signer_twice"
    after = client.get(f"/api/v1/rounds/{body['id']}", headers=auth).get_json()
    assert after["signers"][1]["email"] == people[1]["email"]  # nothing changed


def test_a_personal_number_is_written_in_ascii_digits(client, auth, runtime, protocol_pdf):
    people = signers_spec()
    people[0]["personal_number"] = "١٩٨٠٠١٠١٢٣٨٧"  # 19800101-2387 in Arabic-Indic digits
    before = counts(runtime)
    resp = create_round(client, auth, protocol_pdf, signers=people)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "personal_number"
    assert counts(runtime) == before


@pytest.mark.parametrize("body", ['{"reason": 123}', '{"reason": "Sjuk\\ud800"}',
                                  '{"reason": "Sjuk\\u0000"}'])
def test_a_decline_or_cancel_with_a_reason_that_is_not_text_changes_nothing(
        client, auth, protocol_pdf, settings, body):
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    declined = client.post(f"/sign/{token}/decline", data=body,
                           content_type="application/json")
    assert declined.status_code == 400, declined.get_json()
    cancelled = client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth, data=body,
                            content_type="application/json")
    assert cancelled.status_code == 400, cancelled.get_json()
    after = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert after["status"] == "pending"
    assert all(s["status"] == "invited" for s in after["signers"])


def test_missing_fields_are_400(client, auth, protocol_pdf):
    assert client.post("/api/v1/rounds", headers=auth, data={}).status_code == 400
    resp = client.post("/api/v1/rounds", headers=auth,
                       data={"round": json.dumps({"title": "t", "signers": signers_spec()})})
    assert resp.status_code == 400


def test_wrong_signing_token_is_404(client):
    assert client.get("/sign/not-a-real-token").status_code == 404
    assert client.post("/sign/not-a-real-token/bankid").status_code == 404
    assert client.get("/sign/" + "x" * 43 + "/document").status_code == 404


def test_signing_page_shows_document_and_bankid_button(client, auth, protocol_pdf, settings):
    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[1]["email"]]
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "Signera med BankID" in page and "Justerare" in page
    assert "Du har signerat" not in page
    assert client.get(f"/sign/{token}/document").data.startswith(b"%PDF-")


def test_decline_ends_round_and_tells_secretariat(client, auth, protocol_pdf, settings, token):
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    links = links_in_outbox(settings.data_dir / "outbox")
    resp = client.post(f"/sign/{links[signers[2]['email']]}/decline",
                       json={"reason": "Paragraf 4 är fel"})
    assert resp.status_code == 200
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["status"] == "declined"
    assert body["signers"][2]["status"] == "declined"
    assert body["signers"][2]["decline_reason"] == "Paragraf 4 är fel"
    # the others' links are dead now
    assert client.post(f"/sign/{links[signers[0]['email']]}/bankid").status_code == 404
    outbox = sorted((settings.data_dir / "outbox").glob("*.json"))
    last = json.loads(outbox[-1].read_text())
    assert "Nekad" in last["subject"] and "Paragraf 4" in last["body"]
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()["events"]
    assert events[-1]["type"] == "signer.declined"


def test_cancel_and_remind(client, auth, protocol_pdf, settings):
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    old = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    resp = client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth)
    assert resp.status_code == 200 and len(resp.get_json()["reminded"]) == 3
    new = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert new == old  # the reminder resends the link the signer already has
    assert client.get(f"/sign/{new}").status_code == 200
    assert client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth).status_code == 200
    again = client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth)
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()["events"]
    assert [e["type"] for e in events].count("round.cancelled") == 1
    assert client.post(f"/sign/{new}/bankid").status_code == 404
    assert client.get(f"/sign/{new}").status_code == 410  # a page that says it was cancelled
    assert client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth).status_code == 409


def test_cancelling_tells_those_who_had_a_link_with_the_reason(client, auth, runtime,
                                                              protocol_pdf, settings):
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert sign_over_http(client, token, approve_with(runtime))["status"] == "complete"
    bad = client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth, json={"reason": 5})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "reason"
    assert client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()["status"] == \
        "pending"  # nothing changed
    resp = client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth,
                       json={"reason": "Fel version av protokollet"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    ours = {s["email"] for s in signers}
    told = wait_for_mail(settings, lambda m: m["subject"].startswith("Signeringen avbröts")
                         and m["to"] in ours, 3)
    assert sorted(m["to"] for m in told) == sorted(s["email"] for s in signers)
    for mail in told:
        assert "Skäl: Fel version av protokollet" in mail["body"]
        assert "/sign/" not in mail["body"]  # nothing to follow: the links are dead
        signed = mail["to"] == signers[0]["email"]
        assert ("Din underskrift kommer inte att användas" in mail["body"]) == signed
    deadline = time.monotonic() + 30
    while True:
        events = client.get(f"/api/v1/rounds/{round_id}/audit",
                            headers=auth).get_json()["events"]
        sent = [e for e in events if e["type"] == "mail.sent"
                and e["data"].get("kind") == "cancellation"]
        if len(sent) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(sent) == 3
    cancelled = next(e for e in events if e["type"] == "round.cancelled")
    assert cancelled["data"] == {"reason": "Fel version av protokollet"}


def test_audit_trail_recomputes_from_api_output(client, auth, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    body = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()
    events = body["events"]
    assert [e["type"] for e in events[:2]] == ["round.created", "document.prepared"]
    assert events[0]["prev_hash"] == "0" * 64
    for prev, e in zip([None] + events[:-1], events, strict=True):
        assert e["hash"] == outsider_hash(e)
        if prev:
            assert e["prev_hash"] == prev["hash"]
    assert body["head"] == events[-1]["hash"]
    assert verify_chain(events).intact


def test_evidence_zip_is_for_auditors_and_audited(client, auth, runtime, completed_round):
    body, _ = completed_round
    url = f"/api/v1/rounds/{body['id']}/evidence"
    refused = client.get(url, headers=auth)  # the secretariat that ran the round
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    auditor = {"Authorization": "Bearer " + make_user(runtime, "revisor@example.se", "auditor")}
    resp = client.get(url, headers=auditor)
    assert resp.status_code == 200
    events = client.get(f"/api/v1/rounds/{body['id']}/audit", headers=auth).get_json()["events"]
    assert [e["data"] for e in events if e["type"] == "evidence.downloaded"] == [
        {"role": "auditor"}]
    assert events[-1]["actor"] == "user:revisor@example.se"
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    names = zf.namelist()
    assert f"{body['id']}.pdf" in names and "audit.json" in names
    bankid = [n for n in names if n.startswith("bankid/")]
    assert len(bankid) == 3
    ev = json.loads(zf.read(bankid[0]))
    assert ev["signature_verified"] is True
    assert ev["completion"]["signature"] and ev["completion"]["ocspResponse"]
    assert ev["document_sha256"] == body["document_sha256"]


def test_double_completion_records_one_signature(client, auth, runtime, settings, protocol_pdf):
    from signflow.core import signing
    from signflow.core.models import BankIDEvidence, Signer
    from signflow.demo import sign_over_http
    from tests.conftest import approve_with

    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    order_ref = {}

    def approve(ref):
        order_ref["ref"] = ref
        approve_with(runtime)(ref)

    assert sign_over_http(client, token, approve)["status"] == "complete"
    # the same completion arrives again (a retried poll, a second tab)
    with runtime.sessions() as s:
        signer = s.scalar(select(Signer).where(Signer.email == signers[0]["email"]))
        result = runtime.services.providers["bankid"].collect(order_ref["ref"])
        assert signing.record_signature(s, runtime.services, signer, result) is None
        s.commit()
        assert s.scalar(select(func.count()).select_from(BankIDEvidence)
                        .where(BankIDEvidence.signer_id == signer.id)) == 1
    assert client.get(f"/sign/{token}/bankid").get_json()["status"] == "complete"
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "Du har signerat" in page


def test_failed_order_lets_signer_try_again(client, auth, runtime, settings, protocol_pdf):
    from signflow.demo import sign_over_http

    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    failed = sign_over_http(client, token, runtime.simulator.user_cancel)
    assert failed["status"] == "failed" and failed["hint_code"] == "userCancel"
    assert "avbröts" in failed["message"]
    from tests.conftest import approve_with

    assert sign_over_http(client, token, approve_with(runtime))["status"] == "complete"


def test_english_round(client, auth, runtime, settings, protocol_pdf):
    signers = signers_spec()
    body = create_round(client, auth, protocol_pdf, signers=signers, language="en").get_json()
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "Sign with BankID" in page and "Secretary" in page
    mail = [m for m in sorted((settings.data_dir / "outbox").glob("*.json"))
            if signers[0]["email"] in m.read_text()][-1]
    assert "Please sign" in json.loads(mail.read_text())["subject"]
    assert body["language"] == "en"


def test_in_development_the_sign_page_points_to_the_simulator(client, auth, protocol_pdf,
                                                               settings, runtime, monkeypatch):
    from dataclasses import replace

    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "BankID är här en simulator" in page and 'href="/bankid-sim/"' in page
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, dev_mode=False))
    other = client.get(f"/sign/{token}")
    assert other.status_code == 200 and "simulator" not in other.get_data(as_text=True)


def test_the_dev_outbox_speaks_the_pages_language(client, auth, protocol_pdf):
    create_round(client, auth, protocol_pdf)
    page = client.get("/dev/outbox").get_data(as_text=True)
    assert "Utkorg för utveckling" in page and "Till:" in page and "Dev outbox" not in page
    assert re.search(r"Till: \S+@example.se · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d<", page)
    assert "Development outbox" in client.get("/dev/outbox?lang=en").get_data(as_text=True)


def test_qr_code_animates(client, auth, protocol_pdf, settings):
    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert client.get(f"/sign/{token}/bankid/qr.svg").status_code == 404  # nothing started
    assert client.post(f"/sign/{token}/bankid").status_code == 200
    svg = client.get(f"/sign/{token}/bankid/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.headers["Cache-Control"] == "no-store"
    assert client.post(f"/sign/{token}/bankid/cancel").get_json()["status"] == "cancelled"
    assert client.get(f"/sign/{token}/bankid/qr.svg").status_code == 404


def test_rounds_expire_after_their_deadline(client, auth, runtime, settings, protocol_pdf,
                                            monkeypatch, capsys):
    from datetime import timedelta

    from signflow import cli
    from signflow.core.housekeeping import expire_due
    from signflow.core.models import utcnow

    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    with runtime.sessions() as s:
        assert expire_due(s, runtime.services, utcnow()) == []  # not yet
        s.commit()
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")  # the dev outbox and stand-ins
    monkeypatch.delenv("SIGNFLOW_REDIS_URL", raising=False)
    with runtime.sessions() as s:
        assert expire_due(s, runtime.services, utcnow() + timedelta(days=31)) == [round_id]
        s.commit()
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["status"] == "expired"
    assert client.get(f"/sign/{token}").status_code == 410  # "the link has expired"
    assert client.post(f"/sign/{token}/bankid").status_code == 404
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()
    assert events["events"][-1]["type"] == "round.expired" and events["intact"]
    mail = json.loads(sorted((settings.data_dir / "outbox").glob("*.json"))[-1].read_text())
    assert "gick ut" in mail["subject"]
    assert cli.main(["rounds", "expire"]) == 0  # nothing further is due
    assert "0 round(s) expired" in capsys.readouterr().out


@pytest.mark.parametrize("limits,status,code", [
    ({"max_upload_bytes": 2000}, 413, "too_large"),
    ({"max_pages": 1}, 422, "too_many_pages"),
])
def test_size_and_page_limits(settings, protocol_pdf, worker, limits, status, code):
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    settings = settings.with_overrides(**limits)
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, f"lim-{code}@example.se")}
        before = counts(rt)
        resp = create_round(client, auth, protocol_pdf)
        assert resp.status_code == status, resp.get_data(as_text=True)[:200]
        assert resp.get_json()["error"]["code"] == code
        if status == 413:  # a request past every limit says so in the same words
            client.application.config["MAX_CONTENT_LENGTH"] = 3000
            whole = client.post("/api/v1/rounds", headers=auth, data={
                "round": "{}", "document": (io.BytesIO(b"%PDF-" + b"x" * 10**7), "p.pdf")})
            assert whole.status_code == 413
            assert whole.get_json()["error"]["code"] == "too_large"
            assert whole.get_json()["error"]["max_bytes"] > 0
        assert counts(rt) == before
    finally:
        rt.close()
