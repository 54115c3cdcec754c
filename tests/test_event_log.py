"""The Händelselogg: a round's audit trail in words, sealed, for the archive folder."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pikepdf
import pytest
from babel.messages.extract import extract_from_file

from signflow import i18n
from signflow.adapters.bankid_sim import PERSONAS
from signflow.core.audit import GENESIS, canonical_hash
from signflow.demo import links_in_outbox
from signflow.pdf import event_words
from signflow.pdf.event_log import event_log_pdf
from signflow.pdf.event_words import RoundFacts, event_log
from signflow.pdf.pages import A4, MARGIN
from tests.conftest import create_round, make_user
from tests.staff_kit import sign_in_client

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HASH_LINE = re.compile(r"^Hash: ([0-9a-f]{64})$", re.MULTILINE)


def test_a_completed_round_s_log_has_every_event_in_both_times_and_no_secret(
        completed_round, client, auth, settings, tmp_path):
    body, _ = completed_round
    resp = client.get(f"/api/v1/rounds/{body['id']}/events.pdf", headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert "handelselogg.pdf" in resp.headers["Content-Disposition"]
    trail = client.get(f"/api/v1/rounds/{body['id']}/audit", headers=auth).get_json()
    text = pdf_text(resp.data, tmp_path)

    assert "Händelselogg" in text and body["id"] in text and "Protokoll nr 2 2026" in text
    assert "Familjen Helsingborg" in text and "Status: Klar" in text
    assert "Händelseloggen är obruten" in text
    assert f"Kedjans huvud (den sista händelsens hash): {trail['head']}" in " ".join(text.split())
    assert f"Antal händelser: {len(trail['events'])}" in text
    assert HASH_LINE.findall(text) == [e["hash"] for e in trail["events"]]  # every one, in order
    for event in trail["events"]:
        moment = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        assert f"{moment.astimezone(STOCKHOLM):%Y-%m-%d %H:%M:%S} (svensk tid) · " \
               f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in text, event
    # the round page's words, the signer as name and role, the service as itself
    assert "Signeringen skapades" in text and "Carina Leffler signerade" in text
    assert "Av: Carina Leffler (Ordförande)" in text and "Av: signflow (automatiskt)" in text
    # never a personal number (the simulator's people signed), never a signing link
    for persona in PERSONAS:
        number = persona.personal_number
        assert number not in text and f"{number[:8]}-{number[8:]}" not in text
    for token in links_in_outbox(settings.data_dir / "outbox").values():
        assert token not in text
    assert "/sign/" not in text


def test_the_log_is_sealed_by_the_service_and_nothing_may_change_after(
        completed_round, client, auth):
    body, _ = completed_round
    sealed = client.get(f"/api/v1/rounds/{body['id']}/events.pdf", headers=auth).data
    verdict = client.post("/api/v1/verify",
                          data={"document": (io.BytesIO(sealed), "logg.pdf")}).get_json()
    assert verdict["indication"] == "TOTAL-PASSED", verdict
    [seal] = [s for s in verdict["signatures"] if s["kind"] != "timestamp"]
    assert (seal["kind"], seal["signer"], seal["pades_level"], seal["docmdp_ok"]) == (
        "certification", "signflow Service Seal", "B-LTA", True), seal
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import MDPPerm

    [certification] = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[:1]
    assert certification.docmdp_level == MDPPerm.NO_CHANGES
    # the seal says what the service issued: an event log, not a verification report
    assert certification.sig_object["/Reason"] == "Händelselogg utfärdad av signflow"


def test_the_evidence_zip_holds_the_log_and_the_round_page_links_it(
        completed_round, client, settings, runtime, tmp_path):
    body, _ = completed_round
    auditor = client.application.test_client()
    staff(auditor, settings, runtime, "auditor")
    page = auditor.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert f'href="/rounds/{body["id"]}/events.pdf"' in page
    from_page = auditor.get(f"/rounds/{body['id']}/events.pdf")
    assert from_page.status_code == 200 and from_page.data.startswith(b"%PDF-")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    zipped = auditor.post(f"/rounds/{body['id']}/evidence", data={"csrf_token": token})
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as zf:
        assert "handelselogg.pdf" in zf.namelist()
        text = pdf_text(zf.read("handelselogg.pdf"), tmp_path)
        in_zip = json.loads(zf.read("audit.json"))["events"]
    assert "Bevisen laddades ned" in text  # the download that made the ZIP is in its log
    # made before the round was held, it is the very event the trail then recorded
    assert in_zip == _trail(runtime, body["id"])
    assert in_zip[-1]["type"] == "evidence.downloaded"
    # every event of the log reads as the round page's timeline says it
    timeline = html.unescape(auditor.get(f"/rounds/{body['id']}").get_data(as_text=True))
    for event in event_log(_facts(body["id"], "sv"), _trail(runtime, body["id"]),
                           issued=datetime.now(UTC)).events:
        assert event.text in timeline, event.text


def test_another_organisation_gets_not_found(client, auth, settings, runtime, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    other = {"Authorization": "Bearer " + make_user(
        runtime, f"x-{uuid.uuid4().hex[:6]}@example.se", "auditor", "Annan kommun")}
    assert client.get(f"/api/v1/rounds/{round_id}/events.pdf", headers=other).status_code == 404
    stranger = client.application.test_client()
    staff(stranger, settings, runtime, "auditor", org="Annan kommun")
    assert stranger.get(f"/rounds/{round_id}/events.pdf").status_code == 404
    assert client.application.test_client().get(
        f"/rounds/{round_id}/events.pdf").status_code == 302  # a stranger signs in first


def test_an_english_round_gets_an_english_log(client, auth, protocol_pdf, tmp_path):
    round_id = create_round(client, auth, protocol_pdf, language="en").get_json()["id"]
    resp = client.get(f"/api/v1/rounds/{round_id}/events.pdf", headers=auth)
    assert resp.headers["Content-Disposition"] == \
        f"attachment; filename={round_id}-event-log.pdf"  # named as it speaks
    text = pdf_text(resp.data, tmp_path)
    for words in ("Event log", "Round ID: ", "Status: In progress", "The round was created",
                  "Carina Leffler was invited by e-mail", "(Swedish time) · ",
                  "The audit trail is intact", "By: signflow (automatically)", "Page 1 of "):
        assert words in text, words
    assert "Händelselogg" not in text and "Signeringen" not in text


@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_line_of_a_long_log_stays_inside_its_margins(language):
    events = _long_trail()
    log = event_log(_facts("r" * 32, language), events, issued=datetime.now(UTC))
    pdf = event_log_pdf(log)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages) > 3
    lines = _shown_lines(pdf)
    for left, right, line in lines:
        assert left >= MARGIN - 0.01 and right <= A4[0] - MARGIN + 0.01, (right, line)
    text = "\n".join(line for _, _, line in lines)
    assert HASH_LINE.findall(text) == [e["hash"] for e in events]
    assert log.intact and events[-1]["hash"] in text


def test_a_broken_chain_is_said_so_with_its_problems():
    events = _long_trail()[:5]
    events[2] = {**events[2], "actor": "user:someone-else@example.se"}
    log = event_log(_facts("r1", "sv"), events, issued=datetime.now(UTC))
    assert not log.intact
    assert log.chain[0].startswith("Händelseloggen är INTE obruten")
    assert any("event 3" in p for p in log.chain[1:])


def test_a_moved_deadline_reads_in_swedish_time_and_a_user_as_their_address():
    events = _long_trail()[:1]
    events.append({"seq": 2, "type": "round.deadline_extended",
                   "at": "2026-06-30T10:00:00.000000Z", "actor": "user:sekr@example.se",
                   "data": {"from": "2026-06-30T21:59:59+00:00",
                            "to": "2026-07-10T21:59:59+00:00"},
                   "prev_hash": events[0]["hash"]})
    events[-1]["hash"] = canonical_hash(events[-1])
    [_, moved] = event_log(_facts("r1", "sv"), events, issued=datetime.now(UTC)).events
    assert (moved.stockholm, moved.utc) == ("2026-06-30 12:00:00", "2026-06-30 10:00:00 UTC")
    assert moved.actor == "sekr@example.se"
    assert moved.details == (("Tidigare sista dag", "2026-06-30 23:59:59"),
                             ("Ny sista dag", "2026-07-10 23:59:59"))


def test_every_phrase_of_the_log_has_a_swedish_translation():
    catalogue = i18n.merged_catalogue("sv")
    asked = {message for _line, message, _comments, _ctx
             in extract_from_file("python", event_words.__file__) if message}
    assert len(asked) > 30
    assert not {m for m in asked if not catalogue.get(m)}


# --- helpers -----------------------------------------------------------------------------

def staff(client, settings, runtime, role: str, org: str = "Familjen Helsingborg") -> str:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email, role, org)
    sign_in_client(client, settings, runtime, email)
    return email


def pdf_text(data: bytes, tmp_path) -> str:
    """The text of *data*: pdftotext where installed, pypdfium2 otherwise."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext:
        path = tmp_path / f"{uuid.uuid4().hex}.pdf"
        path.write_bytes(data)
        return subprocess.run([pdftotext, str(path), "-"], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    import pypdfium2

    doc = pypdfium2.PdfDocument(data)
    text = "\f".join(page.get_textpage().get_text_range() for page in doc)
    return text.replace("\r\n", "\n")


def _trail(runtime, round_id: str) -> list[dict]:
    from signflow.core.audit import round_events

    with runtime.sessions() as session:
        return round_events(session, round_id)


def _facts(round_id: str, language: str) -> RoundFacts:
    return RoundFacts(id=round_id, title="Protokoll nr 2 2026", organisation="Familjen Helsingborg",
                      workflow="Protokoll (protokoll)", status="completed", language=language,
                      signers={})


def _long_trail() -> list[dict]:
    """Seventy events, a chain intact, with the longest words the trail may hold."""
    long_name = "Anna-Karin Wåhlberg Östergren-Lindqvist af Ekenstierna"
    people = [{"id": f"s{i}", "name": f"{long_name} {i}", "role": role,
               "email": f"anna-karin.wahlberg-ostergren-{i}@forvaltningen.helsingborg.example.se"}
              for i, role in enumerate(["sekreterare", "justerare", "ordforande", "ledamot"])]
    kinds = [
        ("signer.invited", "user:sekretariatet@helsingborg.example.se",
         lambda p: {"signer": p["id"], "email": p["email"]}),
        ("mail.sent", "system", lambda p: {"signer": p["id"], "kind": "invitation"}),
        ("identity.started", None, lambda p: {"signer": p["id"], "provider": "bankid",
                                              "order_ref": str(uuid.uuid4())}),
        ("signer.identity_mismatch", None,
         lambda p: {"signer": p["id"], "order_ref": str(uuid.uuid4()), "check": "name",
                    "reported_name": long_name.upper()}),
        ("signer.declined", None, lambda p: {"signer": p["id"], "round_continues": True,
                                             "reason": "Jag var inte närvarande vid "
                                                       "sammanträdet " * 12 + "x" * 200}),
        ("signer.replaced", "user:sekretariatet@helsingborg.example.se",
         lambda p: {"signer": p["id"], "old_name": p["name"], "old_email": p["email"],
                    "name": p["name"] + " den yngre", "email": "ny-" + p["email"]}),
        ("signer.signed", None, lambda p: {"signer": p["id"], "name": long_name.upper(),
                                           "order_ref": str(uuid.uuid4()), "method": "bankid",
                                           "identity_check": "personal_number",
                                           "document_sha256": "ab" * 32}),
    ]
    events: list[dict] = []
    at = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # across the change to summer time

    def add(type_: str, actor: str, data: dict) -> None:
        event = {"seq": len(events) + 1, "type": type_,
                 "at": (at + timedelta(minutes=7 * len(events))).strftime(
                     "%Y-%m-%dT%H:%M:%S.%fZ"),
                 "actor": actor, "data": data,
                 "prev_hash": events[-1]["hash"] if events else GENESIS}
        event["hash"] = canonical_hash(event)
        events.append(event)

    add("round.created", "user:sekretariatet@helsingborg.example.se", {
        "title": "Protokoll från kommunstyrelsens sammanträde " * 4, "workflow": "protokoll",
        "provider": "bankid", "order": "steps", "pages": 412, "original_sha256": "cd" * 32,
        "signers": people})
    while len(events) < 70:
        for type_, actor, data in kinds:
            person = people[len(events) % len(people)]
            add(type_, actor or f"signer:{person['id']}", data(person))
    add("round.completed", "system", {"sha256": "ef" * 32, "size": 123456})
    return events


def _shown_lines(pdf_bytes: bytes) -> list[tuple[float, float, str]]:
    """(left, right, text) of every line drawn, measured with the PDF's own font widths
    (as tests/test_verdicts.py measures the verification report)."""
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


def test_an_evidence_zip_made_while_the_trail_moved_is_made_again(
        completed_round, client, settings, runtime, monkeypatch):
    """The coming event is made from the trail as read; if another event lands while
    the ZIP is sealed, the ZIP is made again from the new trail, never recorded stale."""
    from signflow.core.audit import EventType, append_event, lock_round
    from signflow.web import api

    body, _ = completed_round
    auditor = {"Authorization": "Bearer " + make_user(
        runtime, f"rev-{uuid.uuid4().hex[:6]}@example.se", "auditor")}
    made = []
    real = api.evidence_zip

    def racing(session, round_, events):
        zipped = real(session, round_, events)
        made.append(events)
        if len(made) == 1:  # meanwhile, another event
            with runtime.sessions() as other, other.begin():
                append_event(other, lock_round(other, body["id"]),
                             EventType.DEADLINE_EXTENDED, "system", {"note": "meanwhile"})
        return zipped

    monkeypatch.setattr(api, "evidence_zip", racing)
    resp = client.get(f"/api/v1/rounds/{body['id']}/evidence", headers=auditor)
    assert resp.status_code == 200 and len(made) == 2
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        in_zip = json.loads(zf.read("audit.json"))["events"]
    trail = _trail(runtime, body["id"])
    assert in_zip == trail and [e["type"] for e in trail[-2:]] == [
        "round.deadline_extended", "evidence.downloaded"]
    assert [e["type"] for e in trail].count("evidence.downloaded") == 1
