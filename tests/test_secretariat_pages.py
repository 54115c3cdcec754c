"""The secretariat's pages through the Flask test client: list, new round, round page."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
import zipfile

import pytest
from sqlalchemy import func, select

from signflow.core.audit import round_events, verify_chain
from signflow.core.models import Document, Round, Signer
from signflow.demo import links_in_outbox, sign_over_http
from tests.conftest import approve_with, create_round, make_user, signers_spec
from tests.staff_kit import sign_in_client

# Valid personal numbers (Luhn), from Skatteverket's test series.
PNR = "19811218-9876"
PNR_BAD_CHECK = "19811218-9875"


def staff(client, settings, runtime, role="secretariat", org="Familjen Helsingborg"):
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.se"
    token = make_user(runtime, email, role, org)
    sign_in_client(client, settings, runtime, email)
    return email, {"Authorization": f"Bearer {token}"}


def counts(runtime):
    with runtime.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Round)),
                s.scalar(select(func.count()).select_from(Document)))


def csrf(client, path="/rounds/new") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form_data(token: str, pdf: bytes | None, **overrides) -> dict:
    tag = uuid.uuid4().hex[:6]
    data = {
        "csrf_token": token, "title": "Protokoll styrelsemöte 2026-03-12",
        "workflow": "standard", "language": "sv", "order": "", "message": "", "deadline": "",
        "signers-0-name": "Mikael Johansson", "signers-0-email": f"sek-{tag}@example.se",
        "signers-0-role": "sekreterare",
        "signers-1-name": "Ardiana Demjaha", "signers-1-email": f"just-{tag}@example.se",
        "signers-1-role": "justerare", "signers-1-personal_number": PNR,
        "signers-2-name": "", "signers-2-email": "", "signers-2-role": "ordforande",
    }
    if pdf is not None:
        data["document"] = (io.BytesIO(pdf), "protokoll.pdf")
    data.update(overrides)
    return data


def started_round(client, auth, pdf):
    resp = create_round(client, auth, pdf)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


# --- who may see what -------------------------------------------------------------

@pytest.mark.parametrize("path", ["/rounds", "/rounds/new", "/rounds/abc"])
def test_a_stranger_is_sent_to_sign_in(client, path):
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(f"/login?next={path}")


def test_another_organisations_round_is_not_found(client, settings, runtime, protocol_pdf):
    _, auth = staff(client, settings, runtime, org="Annan kommun")
    body = started_round(client, auth, protocol_pdf)
    other = client.application.test_client()
    staff(other, settings, runtime)
    assert other.get(f"/rounds/{body['id']}", headers={"Accept": "text/html"}).status_code == 404
    assert other.get(f"/rounds/{body['id']}/document").status_code == 404
    assert body["title"] not in other.get("/rounds").get_data(as_text=True)


def test_an_auditor_sees_the_list_but_cannot_change_anything(client, settings, runtime,
                                                             protocol_pdf):
    _, auth = staff(client, settings, runtime)
    body = started_round(client, auth, protocol_pdf)
    auditor = client.application.test_client()
    staff(auditor, settings, runtime, role="auditor")
    page = auditor.get("/rounds").get_data(as_text=True)
    assert body["title"] in page and "/rounds/new" not in page
    round_page = auditor.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "Påminn" not in round_page and "Avbryt signeringen" not in round_page
    token = re.search(r'name="csrf_token" value="([^"]+)"', round_page).group(1)
    for action in ("remind", "cancel"):
        resp = auditor.post(f"/rounds/{body['id']}/{action}", data={"csrf_token": token})
        assert resp.status_code == 403
    assert auditor.get("/rounds/new").status_code == 403
    with runtime.sessions() as s:
        assert s.get(Round, body["id"]).status == "pending"


def test_a_post_without_the_csrf_token_is_refused(client, settings, runtime, protocol_pdf):
    _, auth = staff(client, settings, runtime)
    body = started_round(client, auth, protocol_pdf)
    assert client.post(f"/rounds/{body['id']}/cancel").status_code == 400
    with runtime.sessions() as s:
        assert s.get(Round, body["id"]).status == "pending"


# --- the list ------------------------------------------------------------------------

def test_the_list_shows_status_progress_and_finds_by_title_and_signer(client, settings, runtime,
                                                                     protocol_pdf):
    _, auth = staff(client, settings, runtime)
    empty = client.get("/rounds").get_data(as_text=True)
    assert "Inga signeringar än" in empty and 'href="/rounds/new"' in empty
    create_round(client, auth, protocol_pdf, title="Protokoll nr 1")
    signers = signers_spec()
    signers[0]["name"] = "Zacharias Östberg"
    create_round(client, auth, protocol_pdf, title="Årsmöte", signers=signers)
    page = client.get("/rounds").get_data(as_text=True)
    assert "Protokoll nr 1" in page and "Årsmöte" in page
    assert "Pågår" in page and "0 av 3 har signerat" in page
    found = client.get("/rounds?q=Östberg").get_data(as_text=True)
    assert "Årsmöte" in found and "Protokoll nr 1" not in found
    assert "Protokoll nr 1" not in client.get("/rounds?status=completed").get_data(as_text=True)
    english = client.get("/rounds?lang=en").get_data(as_text=True)
    assert "In progress" in english and "0 of 3 have signed" in english


def test_the_list_is_paged(client, settings, runtime, monkeypatch, protocol_pdf):
    from signflow.web import secretariat

    monkeypatch.setattr(secretariat, "PER_PAGE", 1)
    _, auth = staff(client, settings, runtime)
    create_round(client, auth, protocol_pdf, title="Första")
    create_round(client, auth, protocol_pdf, title="Andra")
    first = client.get("/rounds").get_data(as_text=True)
    assert "Andra" in first and "Första" not in first and "page=2" in first
    assert "Första" in client.get("/rounds?page=2").get_data(as_text=True)
    assert client.get("/rounds?page=zz").status_code == 200


# --- the new-round form -------------------------------------------------------------

def test_the_form_offers_the_workflows_and_roles_in_words(client, settings, runtime):
    staff(client, settings, runtime)
    page = client.get("/rounds/new").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert "Justering i turordning" in page and "Ordförande" in page and "Justerare" in page


def test_form_errors_stand_next_to_their_fields_and_nothing_is_stored(client, settings,
                                                                      runtime, protocol_pdf):
    staff(client, settings, runtime)
    before = counts(runtime)
    data = form_data(csrf(client), protocol_pdf, title="",
                     **{"signers-0-email": "inte-en-adress",
                        "signers-1-personal_number": PNR_BAD_CHECK})
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert counts(runtime) == before
    for field in ("title", "signers-0-email", "signers-1-personal_number"):
        assert re.search(rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"', html), field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html), field
        assert re.search(rf'<p class="field-error" id="{field}-error" >\S', html), field
    assert 'id="error-summary"' in html and 'href="#signers-0-email"' in html
    # what was typed is kept; the file must be chosen again, and the page says so
    assert 'value="Mikael Johansson"' in html and 'value="Ardiana Demjaha"' in html
    assert "Välj filen igen" in html
    assert PNR_BAD_CHECK not in html or "signers-1-personal_number" in html
    assert "Mikael" not in links_in_outbox(settings.data_dir / "outbox")


def test_a_refused_upload_is_named_next_to_the_file_field(client, settings, runtime, demo_run):
    demo_pdf = demo_run.pdf
    staff(client, settings, runtime)
    before = counts(runtime)
    data = form_data(csrf(client), b"Hello, I am not a PDF at all")
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert re.search(r'<p class="field-error" id="document-error" >Filen är inte en PDF', html)
    assert 'value="Protokoll styrelsemöte 2026-03-12"' in html
    assert "Välj filen igen" in html
    assert counts(runtime) == before
    signed = client.post("/rounds/new", data=form_data(csrf(client), demo_pdf),
                         content_type="multipart/form-data")
    assert signed.status_code == 400  # as every refused upload on the form
    assert "PDF:en är redan signerad. Välj protokollet som det var innan någon signerade det" \
        in signed.get_data(as_text=True)
    assert counts(runtime) == before


def test_one_person_named_twice_is_said_at_the_second_place(client, settings, runtime,
                                                            protocol_pdf):
    staff(client, settings, runtime)
    before = counts(runtime)
    data = form_data(csrf(client), protocol_pdf, **{
        "signers-2-name": "Mikael Johansson", "signers-2-email": "SEK-X@example.se",
        "signers-0-email": "sek-x@example.se"})
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert re.search(r'id="signers-2-email-error" >Personen är redan angiven för en annan '
                     r'plats', html)
    assert counts(runtime) == before


def test_a_personal_number_workflow_asks_for_every_number(client, settings, runtime,
                                                          protocol_pdf):
    from dataclasses import replace

    from signflow.core.workflows import STANDARD

    runtime.services.workflows = dict(runtime.services.workflows) | {
        "strict": replace(STANDARD, name="strict", identity="personal_number")}
    staff(client, settings, runtime)
    data = form_data(csrf(client), protocol_pdf, workflow="strict")
    html = client.post("/rounds/new", data=data,
                       content_type="multipart/form-data").get_data(as_text=True)
    assert re.search(r'id="signers-0-personal_number-error" >\S', html)
    assert 'id="signers-1-personal_number-error" hidden' in html


def test_the_row_buttons_work_without_javascript(client, settings, runtime):
    staff(client, settings, runtime)
    data = form_data(csrf(client), None, action="up-1")
    html = client.post("/rounds/new", data=data,
                       content_type="multipart/form-data").get_data(as_text=True)
    assert html.index("Ardiana Demjaha") < html.index("Mikael Johansson")
    assert 'role="alert" tabindex="-1" hidden' in html  # moving a row is not an error
    data = form_data(csrf(client), None, action="add")
    html = client.post("/rounds/new", data=data,
                       content_type="multipart/form-data").get_data(as_text=True)
    assert 'name="signers-3-name"' in html
    assert 'id="error-summary" class="error-summary card" role="alert" tabindex="-1" hidden' \
        in html


def test_a_valid_form_starts_the_round_and_shows_its_page(client, settings, runtime,
                                                          protocol_pdf):
    email, _ = staff(client, settings, runtime)
    data = form_data(csrf(client), protocol_pdf, deadline="2099-01-01")
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400  # more than a year away
    assert "mellan i dag och ett år" in resp.get_data(as_text=True)
    data = form_data(csrf(client), protocol_pdf, order="sequential", message="Välkomna")
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    round_id = resp.headers["Location"].rsplit("/", 1)[1]
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert round_.created_by.email == email and round_.order == "sequential"
        assert [x.name for x in round_.signers] == ["Mikael Johansson", "Ardiana Demjaha"]
        assert round_.signers[1].personal_number_given
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Signeringen har startat" in page and "Protokoll styrelsemöte" in page
    assert "Sekreterare" in page and "Justerare" in page
    assert PNR not in page and PNR.replace("-", "") not in page


def test_a_deadline_becomes_the_links_end(client, settings, runtime, protocol_pdf):
    from datetime import date, timedelta

    staff(client, settings, runtime)
    day = date.today() + timedelta(days=10)
    data = form_data(csrf(client), protocol_pdf, deadline=day.isoformat())
    resp = client.post("/rounds/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303
    round_id = resp.headers["Location"].rsplit("/", 1)[1]
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert round_.expires_at.astimezone().date() in (day, day + timedelta(days=1))
        assert round_.signers[0].token_expires_at == round_.expires_at
    mails = [json.loads(p.read_text()) for p in (settings.data_dir / "outbox").glob("*.json")]
    assert any(day.isoformat() in m["body"] for m in mails)


def test_thumbnails_come_from_the_isolated_renderer(client, settings, runtime, protocol_pdf):
    staff(client, settings, runtime)
    token = csrf(client)
    resp = client.post("/rounds/new/thumbnails", headers={"X-CSRFToken": token},
                       data={"document": (io.BytesIO(protocol_pdf), "p.pdf")})
    body = resp.get_json()
    assert resp.status_code == 200 and body["pages"] >= 1
    assert body["images"][0].startswith("data:image/png;base64,")
    bad = client.post("/rounds/new/thumbnails", headers={"X-CSRFToken": token},
                      data={"document": (io.BytesIO(b"no pdf"), "p.pdf")})
    assert bad.status_code == 422 and "inte en PDF" in bad.get_json()["error"]


# --- the round page and its actions -------------------------------------------------

def action(client, round_id: str, path: str, **data):
    token = csrf(client, f"/rounds/{round_id}")
    return client.post(f"/rounds/{round_id}/{path}", data={"csrf_token": token, **data})


def test_the_round_page_shows_signers_and_a_timeline_in_words(client, settings, runtime,
                                                              protocol_pdf):
    _, auth = staff(client, settings, runtime)
    body = started_round(client, auth, protocol_pdf)
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "Ordförande" in html and "Carina Leffler" in html
    assert "Inbjuden, har inte signerat" in html
    assert "Signeringen skapades" in html and "Carina Leffler bjöds in via e-post" in html
    assert "E-postmeddelandet till Carina Leffler skickades" in html  # delivered, not only due
    assert "Händelseloggen är obruten" in html
    assert not re.search(r"\d{4}-\d\d-\d\dT", html)  # Stockholm wall time, not RFC 3339
    english = client.get(f"/rounds/{body['id']}?lang=en").get_data(as_text=True)
    assert "Chair" in english and "Carina Leffler was invited by e-mail" in english


def test_remind_and_cancel_from_the_page_are_in_the_audit_trail(client, settings, runtime,
                                                                protocol_pdf):
    email, auth = staff(client, settings, runtime)
    body = started_round(client, auth, protocol_pdf)
    resp = action(client, body["id"], "remind")
    assert resp.status_code == 303
    assert "påminnelse" in client.get(f"/rounds/{body['id']}").get_data(as_text=True).lower()
    resp = action(client, body["id"], "cancel")
    assert resp.status_code == 303
    with runtime.sessions() as s:
        events = round_events(s, body["id"])
        assert s.get(Round, body["id"]).status == "cancelled"
    types = [e["type"] for e in events]
    assert types.count("signer.reminded") == 3 and "round.cancelled" in types
    cancelled = next(e for e in events if e["type"] == "round.cancelled")
    assert cancelled["actor"] == f"user:{email}" and verify_chain(events).intact
    # after it only the mails telling the three (sent in this process on this pass)
    after = events[events.index(cancelled) + 1:]
    assert all(e["type"] == "mail.sent" and e["data"]["kind"] == "cancellation" for e in after)
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "Avbruten" in html and "Påminn" not in html
    assert "omgången avslutades innan alla hade signerat" in html  # not "waiting"
    again = action(client, body["id"], "remind")
    assert again.status_code == 303  # ended: a flash says so, nothing breaks


def test_replacing_a_signer_kills_the_old_link_and_invites_the_new_person(
        client, settings, runtime, protocol_pdf):
    email, auth = staff(client, settings, runtime)
    signers = signers_spec()
    body = create_round(client, auth, protocol_pdf, signers=signers).get_json()
    outbox = settings.data_dir / "outbox"
    old_link = links_in_outbox(outbox)[signers[1]["email"]]
    target = body["signers"][1]["id"]
    bad = action(client, body["id"], f"signers/{target}/replace", name="Anna Svensson",
                 email="fel", personal_number=PNR_BAD_CHECK)
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert re.search(rf'id="r-{target}-email"[^>]*aria-invalid="true"', html)
    # said at once, and the focus on the field to mend (the language review: the page
    # came back with the focus at its top and the errors inside a closed-looking form)
    assert 'role="alert">Ingen byttes ut: rätta fälten som är markerade nedan.' in html
    assert re.search(rf'id="r-{target}-email"[^>]*autofocus', html)
    assert len(re.findall(r"\sautofocus[\s>]", html)) == 1
    empty = action(client, body["id"], f"signers/{target}/replace", name="", email="")
    assert "Ange undertecknarens e-postadress." in empty.get_data(as_text=True)
    assert re.search(rf'id="r-{target}-name"[^>]*autofocus', empty.get_data(as_text=True))
    new_email = f"anna-{uuid.uuid4().hex[:6]}@example.se"
    form = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    # the place's organisation offered as it stands, the title left to fill in
    assert re.search(rf'id="r-{target}-organisation"[^>]*value="{signers[1]["organisation"]}"',
                     form)
    assert re.search(rf'id="r-{target}-title"[^>]*value=""', form)
    resp = action(client, body["id"], f"signers/{target}/replace", name="Anna Svensson",
                  email=new_email, personal_number=PNR, organisation="Bjuvs kommun",
                  title="Kommunstyrelsens ordförande")
    assert resp.status_code == 303
    # the old link says the place went to someone else, and can do nothing more
    old_page = client.get(f"/sign/{old_link}")
    assert old_page.status_code == 410
    assert "Någon annan signerar i ditt ställe" in old_page.get_data(as_text=True)
    assert "Justerare" in old_page.get_data(as_text=True)
    assert client.get(f"/sign/{old_link}/document").status_code == 404
    assert client.post(f"/sign/{old_link}/bankid", headers={"Accept": "application/json"}
                       ).status_code == 404
    new_link = links_in_outbox(outbox)[new_email]
    assert client.get(f"/sign/{new_link}").status_code == 200
    with runtime.sessions() as s:
        signer = s.get(Signer, target)
        assert (signer.name, signer.email, signer.role) == ("Anna Svensson", new_email,
                                                            "justerare")
        # the signature page prints the new person's, not the one replaced
        assert (signer.organisation, signer.title) == ("Bjuvs kommun",
                                                       "Kommunstyrelsens ordförande")
        events = round_events(s, body["id"])
    replaced = [e for e in events if e["type"] == "signer.replaced"]
    assert replaced[0]["data"] == {"signer": target, "old_name": "Ardiana Demjaha",
                                   "old_email": signers[1]["email"], "name": "Anna Svensson",
                                   "email": new_email, "organisation": "Bjuvs kommun",
                                   "title": "Kommunstyrelsens ordförande"}
    assert PNR not in json.dumps(events) and PNR.replace("-", "") not in json.dumps(events)
    assert [e["type"] for e in events[-2:]] == ["signer.invited", "mail.sent"]
    assert events[-1]["data"] == {"signer": target, "kind": "invitation"}
    assert verify_chain(events).intact
    page = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "Ardiana Demjaha ersattes av Anna Svensson" in page


def test_a_signer_who_has_signed_cannot_be_replaced(client, settings, runtime, protocol_pdf):
    _, auth = staff(client, settings, runtime)
    signers = signers_spec()
    body = create_round(client, auth, protocol_pdf, signers=signers).get_json()
    link = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert sign_over_http(client, link, approve_with(runtime))["status"] == "complete"
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    first = body["signers"][0]["id"]
    assert f"/signers/{first}/replace" not in html
    resp = action(client, body["id"], f"signers/{first}/replace", name="X Y",
                  email="x@example.se")
    assert resp.status_code == 303
    with runtime.sessions() as s:
        assert s.get(Signer, first).name == "Mikael Johansson"


def test_downloads_under_the_session(client, settings, runtime, protocol_pdf):
    _, auth = staff(client, settings, runtime)
    body = started_round(client, auth, protocol_pdf)
    doc = client.get(f"/rounds/{body['id']}/document")
    assert doc.status_code == 200 and doc.data.startswith(b"%PDF-")
    token = csrf(client, f"/rounds/{body['id']}")
    assert client.post(f"/rounds/{body['id']}/evidence",
                       data={"csrf_token": token}).status_code == 403
    auditor = client.application.test_client()
    staff(auditor, settings, runtime, role="auditor")
    page = auditor.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert f'action="/rounds/{body["id"]}/evidence"' in page
    # a link from elsewhere (a GET, or a POST without the form's token) takes nothing
    assert auditor.get(f"/rounds/{body['id']}/evidence").status_code == 405
    assert auditor.post(f"/rounds/{body['id']}/evidence").status_code == 400
    zipped = auditor.post(f"/rounds/{body['id']}/evidence",
                          data={"csrf_token": csrf(auditor, f"/rounds/{body['id']}")})
    assert zipped.status_code == 200
    assert "audit.json" in zipfile.ZipFile(io.BytesIO(zipped.data)).namelist()
    with runtime.sessions() as s:
        assert round_events(s, body["id"])[-1]["type"] == "evidence.downloaded"


def test_the_prepared_pdf_can_still_be_downloaded_once_the_round_is_complete(
        client, settings, runtime, protocol_pdf):
    from tests.conftest import sign_all, wait_for_status

    _, auth = staff(client, settings, runtime)
    signers = signers_spec()
    body = create_round(client, auth, protocol_pdf, signers=signers).get_json()
    prepared = client.get(f"/rounds/{body['id']}/document").data
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "/prepared.pdf" not in html  # while it is the current document, offered once
    sign_all(client, runtime, settings, signers[:1])
    deadline = time.monotonic() + 30  # the signature is written into the PDF by a job
    while "Ladda ned PDF:en med underskrifterna hittills" not in html:
        assert time.monotonic() < deadline, "the first signature was never applied"
        time.sleep(0.1)
        html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert html.count("Ladda ned den förberedda PDF:en") == 1
    assert f'href="/rounds/{body["id"]}/prepared.pdf"' in html
    sign_all(client, runtime, settings, signers[1:])
    wait_for_status(client, auth, body["id"], "completed")
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert f'href="/rounds/{body["id"]}/document"' in html
    assert f'href="/rounds/{body["id"]}/prepared.pdf"' in html
    assert "Ladda ned den förberedda PDF:en" in html
    resp = client.get(f"/rounds/{body['id']}/prepared.pdf")
    assert resp.status_code == 200 and resp.data == prepared
    assert hashlib.sha256(resp.data).hexdigest() == body["document_sha256"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/rounds/{body['id']}/document").data != prepared  # the signed one
    # another organisation's staff get nothing, as for the other downloads
    other = client.application.test_client()
    staff(other, settings, runtime, org="Annan kommun")
    assert other.get(f"/rounds/{body['id']}/prepared.pdf").status_code == 404
    assert client.application.test_client().get(
        f"/rounds/{body['id']}/prepared.pdf").status_code == 302  # a stranger: sign in


def test_mails_to_the_secretariat_link_to_the_round_page(settings):
    from signflow.core import messages

    link = messages.round_page(settings.base_url, "abc")
    assert link == f"{settings.base_url}/rounds/abc"
    mails = [messages.completed("sv", to="a@b.se", title="T", link=link),
             messages.declined("sv", to="a@b.se", title="T", name="N", role="R", reason="",
                               link=link),
             messages.expired("en", to="a@b.se", title="T", unsigned=["N"], link=link),
             messages.identity_mismatch("sv", to="a@b.se", title="T", name="N", role="R",
                                        reported="X", by_personal_number=False, link=link)]
    for mail in mails:
        assert link in mail.body and "/api/" not in mail.body


@pytest.mark.slow
def test_the_signed_mail_links_to_the_round_page(client, settings, runtime, protocol_pdf):
    from tests.conftest import sign_all, wait_for_mail, wait_for_status

    _, auth = staff(client, settings, runtime)
    signers = signers_spec()
    body = create_round(client, auth, protocol_pdf, signers=signers).get_json()
    sign_all(client, runtime, settings, signers)
    wait_for_status(client, auth, body["id"], "completed")
    # the outbox is shared by the whole run on the PostgreSQL pass: find this round's
    done = wait_for_mail(settings, lambda m: m["subject"] == "Signerat: Protokoll nr 2 2026"
                         and f"{settings.base_url}/rounds/{body['id']}\n" in m["body"])
    assert len(done) == 1
    html = client.get(f"/rounds/{body['id']}").get_data(as_text=True)
    assert "Klar" in html and "Ladda ned den signerade PDF:en" in html
    assert "Transaktions-ID" in html


def with_javascript(pdf: bytes) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                                 JS=pikepdf.String("app.alert(1)"))
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


def test_a_hostile_pdf_is_refused_by_the_form_and_the_thumbnails(client, settings, runtime,
                                                                 protocol_pdf):
    staff(client, settings, runtime)
    hostile = with_javascript(protocol_pdf)
    before = counts(runtime)
    resp = client.post("/rounds/new", data=form_data(csrf(client), hostile),
                       content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and counts(runtime) == before
    assert re.search(r'id="document-error" >PDF:en innehåller skript', html)
    assert 'value="Ardiana Demjaha"' in html
    thumbs = client.post("/rounds/new/thumbnails", headers={"X-CSRFToken": csrf(client)},
                         data={"document": (io.BytesIO(hostile), "p.pdf")})
    assert thumbs.status_code == 422 and "skript" in thumbs.get_json()["error"]


def test_the_form_speaks_english_on_request(client, settings, runtime):
    staff(client, settings, runtime)
    html = client.get("/rounds/new?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Start the round" in html and "Chair" in html
    data = form_data(csrf(client), None, title="")
    html = client.post("/rounds/new?lang=en", data=data,
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "Give the document a title." in html and "Choose the PDF to be signed." in html


def test_a_signer_not_yet_invited_is_replaced_without_a_mail(client, settings, runtime,
                                                            protocol_pdf):
    _, auth = staff(client, settings, runtime)
    body = create_round(client, auth, protocol_pdf, order="sequential").get_json()
    waiting = body["signers"][2]["id"]
    new_email = f"ny-{uuid.uuid4().hex[:6]}@example.se"
    resp = action(client, body["id"], f"signers/{waiting}/replace", name="Nils Nilsson",
                  email=new_email)
    assert resp.status_code == 303
    assert new_email not in links_in_outbox(settings.data_dir / "outbox")
    with runtime.sessions() as s:
        signer = s.get(Signer, waiting)
        assert (signer.name, signer.status) == ("Nils Nilsson", "waiting")
        assert round_events(s, body["id"])[-1]["type"] == "signer.replaced"


def test_a_staff_page_that_says_its_user_is_there_keeps_the_session(client, settings,
                                                                    runtime):
    """/account/alive (static/staff.js): 401 for nobody; for a signed-in user the
    idle limit and a CSRF token for the page's forms, with no caching."""
    import uuid

    from tests.conftest import make_user
    from tests.staff_kit import sign_in_client

    nobody = client.application.test_client().get("/account/alive")
    assert nobody.status_code == 401 and nobody.get_json()["error"]["code"] == "signed_out"
    email = f"alive-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email)
    sign_in_client(client, settings, runtime, email)
    resp = client.get("/account/alive")
    assert resp.status_code == 200
    assert resp.get_json()["idle_seconds"] == settings.session_idle_minutes * 60
    assert len(resp.get_json()["csrf_token"]) > 20
    assert "no-store" in resp.headers["Cache-Control"]
    # a page about to warn only asks how long is left, and keeps nothing going
    from tests.staff_kit import cookie_name, session_cookie, user_id

    client.set_cookie(cookie_name(settings), session_cookie(
        settings, user_id(runtime, email), idle_for=600))
    peeked = client.get("/account/alive?peek=1").get_json()
    assert "csrf_token" not in peeked
    assert settings.session_idle_minutes * 60 - 600 - 5 <= peeked["seconds_left"] \
        <= settings.session_idle_minutes * 60 - 600
    assert client.get("/account/alive?peek=1").get_json()["seconds_left"] <= \
        peeked["seconds_left"]  # still counting down: the peek kept nothing going
    page = client.get("/rounds").get_data(as_text=True)
    assert f'data-session-idle="{settings.session_idle_minutes * 60}"' in page
    assert "/static/staff.js" in page
