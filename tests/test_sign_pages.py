"""The signer's pages over HTTP: links that outlive reminders, ended links that say
what happened, the Origin check, the decline form, the page pictures, the headers."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from signflow.core.models import Signer, utcnow
from signflow.demo import links_in_outbox, sign_over_http
from tests.conftest import approve_with, create_round, signers_spec


@pytest.fixture
def new_round(client, auth, protocol_pdf, settings):
    """Start a round; return its id, signers and their links (in signer order)."""
    def make(language: str = "sv", **extra):
        signers = signers_spec()
        resp = create_round(client, auth, protocol_pdf, signers=signers, language=language,
                            **extra)
        assert resp.status_code == 201, resp.get_json()
        links = links_in_outbox(settings.data_dir / "outbox")
        return resp.get_json()["id"], signers, [links[s["email"]] for s in signers]
    return make


def page_text(resp) -> str:
    return resp.get_data(as_text=True)


def signer_row(runtime, email: str) -> Signer:
    with runtime.sessions() as s:
        signer = s.scalar(select(Signer).where(Signer.email == email))
        s.expunge(signer)
        return signer


# --- a reminder keeps the link ------------------------------------------------------------

def test_a_reminder_resends_the_link_the_signer_already_has(client, auth, runtime, settings,
                                                              new_round):
    round_id, signers, tokens = new_round()
    stored = signer_row(runtime, signers[0]["email"])
    assert stored.link_token_sealed and tokens[0] not in stored.link_token_sealed
    resp = client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth)
    assert resp.status_code == 200
    mails = [json.loads(p.read_text()) for p in sorted((settings.data_dir / "outbox").glob("*"))]
    reminder = [m for m in mails if m["to"] == signers[0]["email"]][-1]
    assert reminder["subject"].startswith("Påminnelse") and tokens[0] in reminder["body"]
    assert links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]] == tokens[0]
    assert client.get(f"/sign/{tokens[0]}").status_code == 200
    assert sign_over_http(client, tokens[0], approve_with(runtime))["status"] == "complete"
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()["events"]
    assert [e["data"]["same_link"] for e in events if e["type"] == "signer.reminded"] == [
        True, True, True]


def test_a_link_from_before_links_were_kept_is_replaced_by_a_reminder(client, auth, runtime,
                                                                      settings, new_round):
    round_id, signers, tokens = new_round()
    with runtime.sessions() as s:  # as a round started before this release left it
        s.scalar(select(Signer).where(Signer.email == signers[0]["email"])) \
            .link_token_sealed = None
        s.commit()
    assert client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth).status_code == 200
    new = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert new != tokens[0]
    assert client.get(f"/sign/{new}").status_code == 200
    assert client.get(f"/sign/{tokens[0]}").status_code == 404
    assert signer_row(runtime, signers[0]["email"]).link_token_sealed  # kept from now on


# --- ended links --------------------------------------------------------------------------

def dead_link_cannot_act(client, token: str) -> None:
    for method, path in [("post", "/bankid"), ("get", "/bankid"), ("post", "/bankid/cancel"),
                         ("get", "/bankid/qr.svg"), ("get", "/document"),
                         ("get", "/pages/1.png"), ("post", "/decline")]:
        kwargs = {"json": {"reason": "x"}} if path == "/decline" else {}
        resp = getattr(client, method)(f"/sign/{token}{path}", **kwargs)
        assert resp.status_code == 404, (method, path, resp.status_code)


def test_a_cancelled_round_says_so_and_its_links_cannot_act(client, auth, runtime, new_round):
    round_id, signers, tokens = new_round()
    assert client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth).status_code == 200
    resp = client.get(f"/sign/{tokens[1]}")
    assert resp.status_code == 410
    text = page_text(resp)
    assert "Signeringen har avbrutits" in text and "Familjen Helsingborg" in text
    assert "mailto:sekretariat-" in text  # whom to ask: the secretariat that started it
    assert "Du har signerat" not in text
    assert "Neka signering" not in text and "/document" not in text
    dead_link_cannot_act(client, tokens[1])
    for s in signers:
        assert signer_row(runtime, s["email"]).link_token_sealed is None

def test_a_status_poll_looks_its_link_up_once(client, runtime, new_round):
    """The signing page polls every two seconds while BankID is open, the most
    frequent request there is: the link's signer is read once per poll, and an
    ended link still answers 404."""
    from sqlalchemy import event

    round_id, _signers, tokens = new_round()
    started = client.post(f"/sign/{tokens[0]}/bankid", headers={"Accept": "application/json"})
    assert started.status_code == 200
    lookups: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "FROM signers" in statement and "token_hash" in statement.split("WHERE")[-1]:
            lookups.append(statement)

    engine = runtime.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        polled = client.get(f"/sign/{tokens[0]}/bankid")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert polled.status_code == 200 and polled.get_json()["status"] == "pending"
    assert len(lookups) == 1
    assert client.get("/sign/" + "x" * 43 + "/bankid").status_code == 404


def test_before_completion_the_signed_copy_is_not_there(client, runtime, new_round):
    _, _, tokens = new_round()
    assert sign_over_http(client, tokens[0], approve_with(runtime))["status"] == "complete"
    for token in tokens[:2]:  # signed, and not yet signed
        resp = client.get(f"/sign/{token}/signed.pdf")
        assert resp.status_code == 303 and resp.headers["Location"] == f"/sign/{token}"
    assert client.get("/sign/no-such-link/signed.pdf").status_code == 404
    assert "Ladda ned det signerade" not in page_text(client.get(f"/sign/{tokens[0]}"))


def test_after_a_decline_each_link_says_what_happened(client, auth, runtime, new_round):
    round_id, signers, tokens = new_round()
    resp = client.post(f"/sign/{tokens[2]}/decline", json={"reason": "Fel datum"})
    assert resp.status_code == 200
    own = client.get(f"/sign/{tokens[2]}")
    assert own.status_code == 200 and "Du har nekat att signera" in page_text(own)
    other = client.get(f"/sign/{tokens[0]}")
    assert other.status_code == 410
    assert "En annan undertecknare nekade att signera" in page_text(other)
    dead_link_cannot_act(client, tokens[0])
    dead_link_cannot_act(client, tokens[2])


def test_an_expired_round_says_the_link_has_expired(client, auth, runtime, new_round):
    from signflow.core.housekeeping import expire_due

    round_id, _, tokens = new_round(language="en")
    with runtime.sessions() as s:
        assert expire_due(s, runtime.services, utcnow() + timedelta(days=31)) == [round_id]
        s.commit()
    resp = client.get(f"/sign/{tokens[0]}")
    assert resp.status_code == 410
    text = page_text(resp)
    assert '<html lang="en">' in text and "The link has expired" in text
    dead_link_cannot_act(client, tokens[0])


def test_a_signer_still_sees_the_confirmation_once_the_round_is_complete(
        client, auth, runtime, settings, new_round):
    from tests.conftest import wait_for_mail, wait_for_status

    round_id, signers, tokens = new_round()
    for token in tokens:
        assert sign_over_http(client, token, approve_with(runtime))["status"] == "complete"
    body = wait_for_status(client, auth, round_id, "completed")
    resp = client.get(f"/sign/{tokens[0]}")
    assert resp.status_code == 200
    text = page_text(resp)
    assert "Du har signerat" in text and body["signers"][0]["transaction_id"] in text
    assert "Alla har signerat" in text
    # the time, in Swedish time
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)
    assert client.get(f"/sign/{tokens[0]}/bankid").get_json()["status"] == "complete"
    assert client.get(f"/sign/{tokens[0]}/document").status_code == 404
    assert client.post(f"/sign/{tokens[0]}/bankid").status_code == 404
    for s in signers:
        assert signer_row(runtime, s["email"]).link_token_sealed is None

    # every signer is mailed the signed protocol, through the link they already had
    secretariats = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth)
    final = secretariats.data
    # one file, one name: the secretariat's download, the signer's and the mail's attachment
    named = 'filename=Protokoll-nr-2-2026-signerat.pdf'
    assert secretariats.headers["Content-Disposition"] == f"attachment; {named}"
    for s, token in zip(signers, tokens, strict=True):
        [copy] = wait_for_mail(settings, lambda m, to=s["email"]: m["to"] == to
                               and m["subject"] == "Signerat protokoll: Protokoll nr 2 2026")
        assert f"/sign/{token}/signed.pdf" in copy["body"]
        got = client.get(f"/sign/{token}/signed.pdf")
        assert got.status_code == 200 and got.data == final
        assert got.headers["Content-Disposition"] == f"attachment; {named}"
        assert got.headers["Cache-Control"] == "no-store"
    assert "Ladda ned det signerade protokollet" in page_text(client.get(f"/sign/{tokens[0]}"))


def test_after_signing_the_page_says_what_happens_next(client, runtime, new_round):
    _, _, tokens = new_round(language="en")
    assert sign_over_http(client, tokens[0], approve_with(runtime))["status"] == "complete"
    text = page_text(client.get(f"/sign/{tokens[0]}"))
    assert "You have signed" in text and "The others who are to sign" in text
    assert "by e-mail" in text and "Transaction ID" in text
    assert '<html lang="en">' in text
    assert "You have signed" not in page_text(client.get(f"/sign/{tokens[1]}"))


@pytest.mark.parametrize("accept,expected", [
    (None, "Länken fungerar inte"), ("en-GB,en;q=0.9", "The link does not work"),
    ("sv,en;q=0.5", "Länken fungerar inte")])
def test_an_unknown_link_is_a_plain_404_in_the_browsers_language(client, accept, expected):
    headers = {"Accept-Language": accept} if accept else {}
    resp = client.get("/sign/" + "x" * 43, headers=headers)
    assert resp.status_code == 404 and expected in page_text(resp)


# --- the Origin check ---------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
])
def test_a_call_from_another_site_is_refused(client, runtime, new_round, headers):
    round_id, _, tokens = new_round()
    resp = client.post(f"/sign/{tokens[0]}/bankid", headers=headers)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "cross_origin"
    assert runtime.simulator.open_orders() == []
    resp = client.post(f"/sign/{tokens[0]}/decline", json={"reason": "x"}, headers=headers)
    assert resp.status_code == 403
    assert client.get(f"/sign/{tokens[0]}").status_code == 200  # nothing happened


def test_a_call_from_the_page_itself_passes(client, settings, new_round):
    _, _, tokens = new_round()
    assert client.post(f"/sign/{tokens[0]}/bankid",
                       headers={"Origin": settings.base_url}).status_code == 200
    assert client.post(f"/sign/{tokens[0]}/bankid/cancel",
                       headers={"Referer": f"{settings.base_url}/sign/{tokens[0]}"}
                       ).status_code == 200
    # the host the request came to counts too (a base URL behind a proxy may differ)
    assert client.post(f"/sign/{tokens[0]}/bankid",
                       headers={"Origin": "http://localhost"}).status_code == 200


# --- declining ----------------------------------------------------------------------------

def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_decline_form_needs_its_token_a_reason_and_a_confirmation(client, auth, new_round):
    round_id, _, tokens = new_round()
    url = f"/sign/{tokens[1]}/decline"
    csrf = csrf_of(page_text(client.get(f"/sign/{tokens[1]}")))
    cases = [
        ({"reason": "Fel", "confirm": "yes"}, "Formuläret hade gått ut"),
        ({"csrf_token": csrf, "reason": " ", "confirm": "yes"}, "Skriv varför du nekar"),
        ({"csrf_token": csrf, "reason": "Fel"}, "Kryssa i rutan"),
        ({"csrf_token": "forged", "reason": "Fel", "confirm": "yes"}, "Formuläret hade gått ut"),
    ]
    for form, error in cases:
        resp = client.post(url, data=form, headers={"Origin": "null"})
        assert resp.status_code == 400, form
        text = page_text(resp)
        assert error in text and "<details id=\"decline-part\" open>" in text
        assert client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()[
            "status"] == "pending"
    resp = client.post(url, data={"csrf_token": csrf, "reason": "Paragraf 4 är fel",
                                  "confirm": "yes"})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/sign/{tokens[1]}"
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["status"] == "declined"
    assert body["signers"][1]["decline_reason"] == "Paragraf 4 är fel"


def test_declining_without_a_reason_changes_nothing(client, auth, new_round):
    round_id, _, tokens = new_round()
    resp = client.post(f"/sign/{tokens[0]}/decline", json={"reason": "  "})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "reason"
    assert client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()[
        "status"] == "pending"


# --- the document as pictures -------------------------------------------------------------

def test_the_pages_are_served_as_pictures_of_the_current_document(client, new_round):
    _, _, tokens = new_round()
    html = page_text(client.get(f"/sign/{tokens[0]}"))
    imgs = re.findall(r'<img class="page"[^>]*>', html)
    assert len(imgs) >= 2  # the protocol's pages and the signature page
    assert all('loading="lazy"' in i for i in imgs)
    assert f'alt="Sida 1 av {len(imgs)}. Texten finns i PDF:en (Öppna PDF)."' in imgs[0]
    assert "Zooma in" in html and "Zooma ut" in html and "Öppna PDF" in html
    assert "<iframe" not in html
    resp = client.get(f"/sign/{tokens[0]}/pages/1.png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert Image.open(io.BytesIO(resp.data)).size[0] == 800
    wide = client.get(f"/sign/{tokens[0]}/pages/{len(imgs)}.png?w=1200")
    assert Image.open(io.BytesIO(wide.data)).size[0] == 1200
    assert client.get(f"/sign/{tokens[0]}/pages/{len(imgs) + 1}.png").status_code == 404
    assert client.get(f"/sign/{tokens[0]}/pages/1.png?w=40000").status_code == 400


# --- headers ------------------------------------------------------------------------------

def test_signing_pages_and_documents_are_not_cached_nor_referred(client, auth, runtime,
                                                                 new_round):
    round_id, _, tokens = new_round()
    urls = [f"/sign/{tokens[0]}", f"/sign/{tokens[0]}/document",
            f"/sign/{tokens[0]}/pages/1.png", "/sign/" + "y" * 43]
    client.post(f"/sign/{tokens[1]}/bankid")
    urls.append(f"/sign/{tokens[1]}/bankid/qr.svg")
    for url in urls:
        resp = client.get(url)
        assert resp.status_code in (200, 404), url
        assert "no-store" in resp.headers["Cache-Control"], url
        assert resp.headers["Referrer-Policy"] == "no-referrer", url
    client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth)
    closed = client.get(f"/sign/{tokens[0]}")
    assert closed.headers["Cache-Control"] == "no-store"
    assert closed.headers["Referrer-Policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_style_without_its_nonce(client, new_round):
    _, _, tokens = new_round()
    resp = client.get(f"/sign/{tokens[0]}")
    nonce = re.search(r"'nonce-([^']+)'", resp.headers["Content-Security-Policy"]).group(1)
    html = page_text(resp)
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        assert f'nonce="{nonce}"' in tag or "src=" in tag, tag
    assert " style=" not in html and "onclick" not in html
    config = json.loads(re.search(r'<script id="sign-config"[^>]*>(.*?)</script>', html,
                                  re.S).group(1))
    assert config["base"] == f"/sign/{tokens[0]}/bankid" and "Försöker igen" in config["retrying"]


def test_a_very_tall_page_is_drawn_narrower_not_as_a_huge_bitmap():
    import pikepdf

    from signflow.pdf.page_images import MAX_PIXELS, PageImages

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(100, 14400))  # 1:144, within PDF's limits
    buf = io.BytesIO()
    pdf.save(buf)
    png = PageImages().png("tall", buf.getvalue(), 1, 1800)
    width, height = Image.open(io.BytesIO(png)).size
    assert width * height <= MAX_PIXELS * 1.01
    assert height > 10 * width  # the shape is kept
    with pytest.raises(IndexError):
        PageImages().png("tall", buf.getvalue(), 2, 800)


def test_json_nested_past_the_parser_is_a_400_not_a_500(client, new_round):
    _round_id, _signers, tokens = new_round()
    deep = "[" * 100_000 + "]" * 100_000
    for url in (f"/sign/{tokens[0]}/decline", f"/sign/{tokens[0]}/bankid"):
        resp = client.post(url, data=deep, content_type="application/json")
        assert resp.status_code < 500, (url, resp.status_code)
    assert client.get(f"/sign/{tokens[0]}").status_code == 200  # nothing happened


def test_times_on_the_signing_page_say_they_are_swedish_and_an_expiry_reads_plainly(
        client, runtime, new_round):
    """The language review: 'Signera senast 2026-12-17 17:17' with no zone, and
    'Sista dag för signering, …, passerade innan alla hade signerat.'"""
    from signflow.core.housekeeping import expire_due

    round_id, _, tokens = new_round()
    assert "(svensk tid)" in page_text(client.get(f"/sign/{tokens[0]}"))
    with runtime.sessions() as s:
        assert expire_due(s, runtime.services, utcnow() + timedelta(days=31)) == [round_id]
        s.commit()
    text = page_text(client.get(f"/sign/{tokens[0]}"))
    assert re.search(r"Tiden för signering gick ut \d{4}-\d{2}-\d{2} \d{2}:\d{2}, innan alla "
                     r"hade signerat\.", text), text
