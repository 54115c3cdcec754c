"""The secretariat's pages in a real browser: the form, the list, the round page."""

from __future__ import annotations

import base64
import re
import uuid

import pytest

from tests.browser_kit import (
    DESKTOP,
    PHONE,
    api_round,
    check_page,
    sign_live,
    tab_to,
)
from tests.conftest import SHARED, make_user, signers_spec
from tests.staff_kit import signed_in_context


@pytest.fixture(scope="module")
def protocol_file(tmp_path_factory, protocol_pdf):
    """The real protocol where ../shared has it, else the generated sample (stand-alone)."""
    real = SHARED / "fixtures" / "protokoll-nr-2-2026.pdf"
    path = tmp_path_factory.mktemp("upload") / "protokoll-nr-2-2026.pdf"
    path.write_bytes(real.read_bytes() if real.exists() else protocol_pdf)
    return path


@pytest.fixture
def org() -> str:
    """An organisation of the test's own: its rounds list holds only the test's rounds."""
    return f"Kommun {uuid.uuid4().hex[:6]}"


def staff_member(live_app, org: str, role: str = "secretariat") -> tuple[str, str]:
    """A new user of *org* in *role*: e-mail address and API token."""
    email = f"{role[:4]}-{uuid.uuid4().hex[:8]}@example.se"
    return email, make_user(live_app.runtime, email, role, org)


@pytest.fixture
def secretary(live_app, org) -> str:
    return staff_member(live_app, org)[0]


def page_for(browser, live_app, email: str, viewport=DESKTOP):
    context = signed_in_context(browser, live_app, email, viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def fill_signer(page, i: int, name: str, email: str, role: str = "", pnr: str = "") -> None:
    page.locator(f"#signers-{i}-name").fill(name)
    page.locator(f"#signers-{i}-email").fill(email)
    if role:
        page.locator(f"#signers-{i}-role").select_option(role)
    if pnr:
        page.locator(f"#signers-{i}-personal_number").fill(pnr)


def wait_for_thumbnails(page) -> None:
    page.locator("#thumbs img").first.wait_for(state="visible", timeout=20_000)
    page.wait_for_function("document.querySelector('#thumbs img').naturalWidth > 0")


def test_the_secretariat_creates_a_round_through_the_form(
        protocol_file, browser, live_app, secretary):
    page, errors = page_for(browser, live_app, secretary)
    page.goto(f"{live_app.url}/rounds")
    page.get_by_text("Inga signeringar än").wait_for()
    check_page(page, "rounds-empty-sv-desktop")
    page.get_by_role("link", name="Ny signering").last.click()
    page.wait_for_url("**/rounds/new")
    check_page(page, "round-new-sv-desktop")
    page.locator("#document").set_input_files(str(protocol_file))
    wait_for_thumbnails(page)
    assert page.locator("#thumbs img").first.get_attribute("alt") == "Sida 1 i den valda filen"
    page.locator("#title").fill("Protokoll styrelsemöte 2026-03-12")
    fill_signer(page, 0, "Mikael Johansson", "mikael@example.se", "sekreterare")
    fill_signer(page, 1, "Ardiana Demjaha", "ardiana@example.se", "justerare", "19811218-9876")
    fill_signer(page, 2, "Carina Leffler", "carina@example.se", "ordforande")
    # move the chair to the top, without a reload
    page.locator("#signers-2-name").focus()
    page.get_by_role("button", name="Flytta upp – undertecknare 3").click()
    page.get_by_role("button", name="Flytta upp – undertecknare 2").click()
    assert page.locator("#signers-0-name").input_value() == "Carina Leffler"
    page.get_by_label("En i taget, i ordningen nedan").check()
    check_page(page, "round-new-filled-sv-desktop")
    page.get_by_role("button", name="Starta signeringen").last.click()
    page.wait_for_url(re.compile(r".*/rounds/[0-9a-f]{32}$"), timeout=30_000)
    page.get_by_text("Signeringen har startat").wait_for()
    assert page.locator(".signer-item strong").all_inner_texts() == [
        "Carina Leffler", "Mikael Johansson", "Ardiana Demjaha"]
    assert "19811218" not in page.content()
    check_page(page, "round-sv-desktop")
    page.goto(page.url + "?lang=en")
    page.get_by_text("What has happened").wait_for()
    check_page(page, "round-en-desktop")
    assert errors == []
    page.context.close()


def test_errors_show_next_to_fields_and_in_a_summary(browser, live_app, secretary):
    page, errors = page_for(browser, live_app, secretary)
    page.goto(f"{live_app.url}/rounds/new")
    fill_signer(page, 0, "Mikael Johansson", "inte-en-adress")
    fill_signer(page, 1, "Ardiana Demjaha", "ardiana@example.se", pnr="19811218-9875")
    page.get_by_role("button", name="Starta signeringen").last.click()
    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    for field in ("document", "title", "signers-0-email", "signers-1-personal_number"):
        box = page.locator(f"#{field}")
        assert box.get_attribute("aria-invalid") == "true", field
        assert f"{field}-error" in box.get_attribute("aria-describedby"), field
        assert page.locator(f"#{field}-error").is_visible(), field
    assert "Ange en e-postadress" in page.locator("#signers-0-email-error").inner_text()
    check_page(page, "round-new-errors-sv-desktop")
    # a link in the summary takes the focus to its field
    summary.get_by_role("link", name=re.compile("Ange dokumentets titel")).click()
    assert page.evaluate("document.activeElement.id") == "title"
    # a file that is not a PDF is refused next to the file field, before anything is sent
    page.locator("#document").set_input_files(
        files=[{"name": "x.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf"}])
    page.locator("#document-error").get_by_text("Filen är inte en PDF").wait_for()
    # fixed fields leave the summary at once, not only at the next try
    page.locator("#title").fill("Protokoll nr 2 2026")
    page.locator("#title").dispatch_event("change")
    assert "Ange dokumentets titel" not in summary.inner_text()
    assert "Ange en e-postadress" in summary.inner_text()
    # the municipal workflow's notice needs the body and the meeting date: marked, checked here
    label = page.locator("label[for=body] .req")
    assert label.is_hidden()
    page.locator("#workflow").select_option("protokoll")
    assert label.is_visible() and page.locator("label[for=meeting_date] .req").is_visible()
    assert page.locator("#body").get_attribute("aria-required") == "true"
    page.get_by_role("button", name="Starta signeringen").last.click()
    page.locator("#body-error").get_by_text("Ange vilket organ").wait_for()
    assert page.locator("#meeting_date").get_attribute("aria-invalid") == "true"
    assert page.locator("#kept_at").get_attribute("aria-invalid") == "true"
    page.locator("#workflow").select_option("standard")
    assert label.is_hidden() and page.locator("#body-error").is_hidden()
    assert errors == []
    page.context.close()


def test_an_empty_form_asks_for_the_first_signers_name(browser, live_app, secretary):
    page, errors = page_for(browser, live_app, secretary)
    page.goto(f"{live_app.url}/rounds/new")
    page.get_by_role("button", name="Starta signeringen").last.click()
    page.locator("#error-summary").wait_for(state="visible")
    assert page.locator("#signers-0-name-error").inner_text() == "Ange undertecknarens namn."
    assert "Lägg till minst en undertecknare" in page.locator("#error-summary").inner_text()
    assert errors == []
    page.context.close()


def test_the_file_can_be_dropped(protocol_file, browser, live_app, secretary):
    page, _ = page_for(browser, live_app, secretary)
    page.goto(f"{live_app.url}/rounds/new")
    data = base64.b64encode(protocol_file.read_bytes()).decode()
    handle = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "protokoll.pdf", {type: "application/pdf"}));
        return dt;
    }""", data)
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": handle})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": handle})
    wait_for_thumbnails(page)
    assert page.evaluate("document.getElementById('document').files[0].name") == "protokoll.pdf"
    assert "2 sidor" in page.locator("#thumbs-status").inner_text() or \
        "sida" in page.locator("#thumbs-status").inner_text()
    page.context.close()


def test_the_form_can_be_filled_and_sent_with_the_keyboard_alone(
        protocol_file, browser, live_app, secretary):
    page, errors = page_for(browser, live_app, secretary)
    page.goto(f"{live_app.url}/rounds/new")
    # the operating system's file dialog is outside the page: the file is given as it would
    page.locator("#document").set_input_files(str(protocol_file))
    wait_for_thumbnails(page)
    page.locator("body").focus()
    tab_to(page, "#title")
    page.keyboard.type("Protokoll nr 3 2026")
    for i, (name, email) in enumerate([("Mikael Johansson", "m@example.se"),
                                       ("Ardiana Demjaha", "a@example.se")]):
        tab_to(page, f"#signers-{i}-name")
        page.keyboard.type(name)
        page.keyboard.press("Tab")
        page.keyboard.type(email)
    tab_to(page, "#add-signer")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "signers-3-name"
    page.keyboard.type("Carina Leffler")
    page.keyboard.press("Tab")
    page.keyboard.type("c@example.se")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/rounds/[0-9a-f]{32}$"), timeout=30_000)
    assert page.locator(".signer-item strong").all_inner_texts() == [
        "Mikael Johansson", "Ardiana Demjaha", "Carina Leffler"]
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("lang,viewport,tag", [
    ("sv", DESKTOP, "desktop"), ("en", DESKTOP, "desktop"),
    ("sv", PHONE, "phone"), ("en", PHONE, "phone")])
def test_the_pages_at_desktop_and_phone_size(
        protocol_file, browser, live_app, secretary, lang, viewport, tag, tmp_path):
    page, errors = page_for(browser, live_app, secretary, viewport=viewport)
    page.goto(f"{live_app.url}/rounds/new?lang={lang}")
    page.locator("#document").set_input_files(str(protocol_file))
    wait_for_thumbnails(page)
    page.locator("#title").fill(f"Protokoll {lang} {tag}")
    fill_signer(page, 0, "Mikael Johansson", "m@example.se")
    fill_signer(page, 1, "Ardiana Demjaha", "a@example.se")
    check_page(page, f"round-new-{lang}-{tag}")
    page.locator("#start").click()
    page.wait_for_url(re.compile(r".*/rounds/[0-9a-f]{32}$"), timeout=30_000)
    page.locator("details.replace summary").first.click()
    check_page(page, f"round-{lang}-{tag}")
    page.goto(f"{live_app.url}/rounds?lang={lang}")
    check_page(page, f"rounds-{lang}-{tag}")
    assert errors == []
    page.context.close()


# --- pages the form does not lead to -------------------------------------------------------

LOOKS = [("sv", DESKTOP, "desktop"), ("en", DESKTOP, "desktop"),
         ("sv", PHONE, "phone"), ("en", PHONE, "phone")]
WORDS = {
    "sv": {"forbidden": "Du har inte behörighet till den här sidan",
           "missing": "Sidan finns inte", "evidence": "Ladda ned bevisen (ZIP)",
           "remind": "Påminn dem som inte har signerat", "no_match": "Ingen signering matchar",
           "notice": "Anslag om justering", "prepared": "Ladda ned den förberedda PDF:en",
           "signed": "Ladda ned den signerade PDF:en"},
    "en": {"forbidden": "You do not have access to this page",
           "missing": "The page could not be found", "evidence": "Download the evidence (ZIP)",
           "remind": "Remind those who have not signed", "no_match": "No round matches",
           "notice": "Notice of justering (anslag)", "prepared": "Download the prepared PDF",
           "signed": "Download the signed PDF"},
}


@pytest.mark.parametrize("lang,viewport,tag", LOOKS)
def test_the_auditor_sees_the_evidence_and_is_refused_what_is_not_theirs(
        browser, live_app, protocol_pdf, org, lang, viewport, tag):
    _, token = staff_member(live_app, org)
    body = api_round(live_app, token, protocol_pdf, signers_spec()[:2])
    auditor, _ = staff_member(live_app, org, "auditor")
    page, errors = page_for(browser, live_app, auditor, viewport=viewport)
    page.goto(f"{live_app.url}/rounds/{body['id']}?lang={lang}")
    assert page.get_by_role("button", name=WORDS[lang]["evidence"]).is_visible()
    assert page.get_by_role("button", name=WORDS[lang]["remind"]).count() == 0
    check_page(page, f"round-auditor-{lang}-{tag}")
    resp = page.goto(f"{live_app.url}/rounds/new")  # the secretariat's, not the auditor's
    assert resp.status == 403
    page.get_by_role("heading", name=WORDS[lang]["forbidden"]).wait_for()
    check_page(page, f"error-403-{lang}-{tag}")
    resp = page.goto(f"{live_app.url}/rounds/{'0' * 32}")
    assert resp.status == 404
    page.get_by_role("heading", name=WORDS[lang]["missing"]).wait_for()
    check_page(page, f"error-404-{lang}-{tag}")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("lang,viewport,tag", LOOKS)
def test_the_list_goes_page_by_page_and_says_when_nothing_matches(
        browser, live_app, protocol_pdf, org, monkeypatch, lang, viewport, tag):
    from signflow.web import secretariat

    monkeypatch.setattr(secretariat, "PER_PAGE", 2)  # three rounds make two pages
    email, token = staff_member(live_app, org)
    for n in range(3):
        api_round(live_app, token, protocol_pdf, signers_spec()[:1], title=f"Protokoll {n}")
    page, errors = page_for(browser, live_app, email, viewport=viewport)
    page.goto(f"{live_app.url}/rounds?q=Protokoll&lang={lang}")
    pager = page.get_by_role("navigation", name={"sv": "Sidor", "en": "Pages"}[lang])
    assert pager.get_by_role("link").count() == 2
    check_page(page, f"rounds-paged-{lang}-{tag}")
    pager.get_by_role("link", name="2").click()
    page.wait_for_url("**page=2")
    assert page.locator(".rounds-title").count() == 1
    check_page(page, f"rounds-page-2-{lang}-{tag}")
    # the language switch keeps the search and the page
    other = {"sv": "en", "en": "sv"}[lang]
    page.locator("a.lang").click()
    page.wait_for_url(f"**lang={other}")
    assert "q=Protokoll" in page.url and "page=2" in page.url
    assert page.locator("html").get_attribute("lang") == other
    page.goto(f"{live_app.url}/rounds?q=ingen-sådan-titel&lang={lang}")
    page.get_by_role("heading", name=WORDS[lang]["no_match"]).wait_for()
    check_page(page, f"rounds-no-match-{lang}-{tag}")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("lang,viewport,tag", [("sv", DESKTOP, "desktop"),
                                               ("en", PHONE, "phone")])
def test_a_completed_protokoll_round_shows_its_notice_and_both_pdfs(
        browser, live_app, protocol_pdf, org, lang, viewport, tag):
    from signflow.demo import links_once_sent
    from tests.test_notice import MEETING
    from tests.test_workflows import municipal_signers

    email, token = staff_member(live_app, org)
    signers = municipal_signers(uuid.uuid4().hex[:6])
    body = api_round(live_app, token, protocol_pdf, signers, workflow="protokoll", **MEETING)
    for signer in signers:  # one at a time: each link is mailed when it is due
        link = links_once_sent(live_app.settings.data_dir / "outbox",
                               [signer["email"]])[signer["email"]]
        assert sign_live(live_app, link) == "complete"
    page, errors = page_for(browser, live_app, email, viewport=viewport)
    url = f"{live_app.url}/rounds/{body['id']}?lang={lang}"
    page.goto(url)
    notice = page.get_by_role("region", name=WORDS[lang]["notice"])
    for _ in range(100):  # the notice is prepared once the round is complete
        if notice.count():
            break
        page.wait_for_timeout(200)
        page.goto(url)
    assert notice.is_visible()
    signed = page.get_by_role("link", name=WORDS[lang]["signed"])
    prepared = page.get_by_role("link", name=WORDS[lang]["prepared"])
    assert signed.get_attribute("href") == f"/rounds/{body['id']}/document"
    assert prepared.get_attribute("href") == f"/rounds/{body['id']}/prepared.pdf"
    check_page(page, f"round-notice-{lang}-{tag}")
    assert errors == []
    page.context.close()


def test_the_round_page_can_remind_with_the_keyboard_alone(
        browser, live_app, protocol_pdf, org):
    email, token = staff_member(live_app, org)
    body = api_round(live_app, token, protocol_pdf, signers_spec()[:2])
    page, errors = page_for(browser, live_app, email)
    page.goto(f"{live_app.url}/rounds/{body['id']}")
    page.locator("body").focus()
    tab_to(page, "form[action$='/remind'] button")
    page.keyboard.press("Enter")
    page.get_by_text("En påminnelse skickades till 2 undertecknare.").wait_for()
    # the cancel part opens and its button is reached the same way
    tab_to(page, "details.cancel summary")
    page.keyboard.press("Enter")
    tab_to(page, "form[action$='/cancel'] button")
    page.keyboard.press("Enter")
    page.get_by_text("Signeringen är avbruten").wait_for()
    assert errors == []
    page.context.close()


def test_the_session_is_kept_while_people_type_warned_before_it_ends_and_nothing_is_lost(
        browser, live_app, secretary):
    """The language review: the session ended after 30 idle minutes with no warning,
    and the half-filled form (its PDF too) was lost to a 'form expired' page.  The
    page warns two minutes ahead, unless the server says another tab kept the
    session going; after the end, signing in again in another tab and pressing
    the button gives the page's forms the new session's token."""
    from signflow.core.accounts import user_by_email
    from signflow.db import session_scope
    from tests.staff_kit import cookie_name, session_cookie, user_id

    idle_ms = live_app.settings.session_idle_minutes * 60_000
    uid = user_id(live_app.runtime, secretary)

    def cookie(**kwargs) -> None:
        page.context.add_cookies([{"name": cookie_name(live_app.settings), "url": live_app.url,
                                   "value": session_cookie(live_app.settings, uid, **kwargs)}])

    page, errors = page_for(browser, live_app, secretary)
    page.clock.install()
    page.goto(f"{live_app.url}/rounds/new")
    page.locator("#title").fill("Protokoll nr 7 2026")
    warning = page.locator("#session-warning")
    # the page's own timer runs out, but the server says the session has long to go
    # (another tab kept it): no warning
    page.clock.fast_forward(idle_ms - 110_000)
    page.wait_for_timeout(500)
    assert warning.is_hidden()
    # now the server's session has been idle all but 100 seconds: the warning
    cookie(idle_for=idle_ms // 1000 - 100)
    page.clock.fast_forward(idle_ms - 110_000)
    warning.wait_for(state="visible")
    assert "Du loggas snart ut" in warning.inner_text()
    assert page.evaluate("document.activeElement.id") == "session-stay"
    check_page(page, "session-warning-desktop-sv")  # axe, no sideways scroll, screenshot
    page.get_by_role("button", name="Fortsätt vara inloggad").click()
    warning.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "title"  # back where it was

    with session_scope(live_app.runtime.sessions) as s:  # the server forgets the session
        user = user_by_email(s, secretary)
        user.session_epoch = (user.session_epoch or 0) + 1
        epoch = user.session_epoch
    page.clock.fast_forward(idle_ms + 1_000)  # left alone past the end
    page.get_by_text("Du har loggats ut.").wait_for()
    cookie(epoch=epoch)  # signed in again in another tab: this page's cookie is the new one
    page.get_by_role("button", name="Jag har loggat in igen").click()
    warning.wait_for(state="hidden")
    assert page.locator("#title").input_value() == "Protokoll nr 7 2026"  # nothing lost
    token = page.locator("input[name=csrf_token]").first.input_value()
    assert page.locator("meta[name=csrf-token]").get_attribute("content") == token
    # the page's forms now carry the new session's token: a post goes through
    page.get_by_role("button", name="Logga ut").click()
    page.get_by_text("Du har loggat ut").wait_for()
    assert errors == []
    page.context.close()
