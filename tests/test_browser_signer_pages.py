"""The signer's pages at the quality bar, in a real browser: every state of the
signing page and of an ended link, at desktop and phone size, in Swedish and
English (axe-core, no sideways scroll, screenshots), and by keyboard alone.

The helpers and the round fixture are the signing-page tests' (tests/test_browser.py).
"""

import base64
import time
import uuid

import pytest
import requests

from tests.browser_kit import check_page, phone_page, tab_to
from tests.test_browser import (
    QR_SHOWN,
    _open_order_of,
    _wait_until_ended,
    desktop_page,
    load_all_pages,
    start_round,
    wait_js,
    watch,
)


@pytest.fixture
def live_round(live_app, protocol_pdf):
    return start_round(live_app, protocol_pdf)

# --- every page, at desktop and phone size, in Swedish and English -------------------------

TEXT = {
    "sv": {"start": "Signera med BankID", "other": "BankID på en annan enhet (QR-kod)",
           "refused": "inte den inbjudna", "cancelled": "Signeringen har avbrutits",
           "missing": "Länken fungerar inte"},
    "en": {"start": "Sign with BankID", "other": "BankID on another device (QR code)",
           "refused": "not the person who was invited", "cancelled": "Signing was cancelled",
           "missing": "The link does not work"},
}


def sized_page(browser, device: str, language: str):
    if device == "phone":
        page, _ = phone_page(browser)
    else:
        page = desktop_page(browser)
    page.set_extra_http_headers({"Accept-Language": "en" if language == "en" else "sv"})
    return page


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_signing_page_passes_the_quality_bar(
        browser, live_app, protocol_pdf, device, language):
    """At rest, with the QR code up, and after a refusal: axe finds nothing serious,
    nothing scrolls sideways, and the page speaks the round's language."""
    from signflow.adapters.bankid_sim import PERSONAS

    rt = live_app.runtime
    body, [link], _ = start_round(live_app, protocol_pdf, language=language, count=1)
    page = sized_page(browser, device, language)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{link}")
    assert page.locator("html").get_attribute("lang") == language
    load_all_pages(page)
    check_page(page, f"sign-{device}-{language}")
    if device == "phone":
        page.get_by_role("button", name=TEXT[language]["other"]).click()
    else:
        page.get_by_role("button", name=TEXT[language]["start"]).click()
    wait_js(page, QR_SHOWN)
    check_page(page, f"sign-qr-{device}-{language}")
    [order] = [o for o in rt.simulator.open_orders()
               if body["id"] in base64.b64decode(o.visible_b64).decode()]
    rt.simulator.open(order.order_ref)
    rt.simulator.approve(order.order_ref, PERSONAS[2])  # the wrong person
    page.get_by_text(TEXT[language]["refused"]).wait_for(timeout=15_000)
    check_page(page, f"sign-refused-{device}-{language}")
    assert problems == []
    page.context.close()


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_ended_and_unknown_links_pass_the_quality_bar(
        browser, live_app, protocol_pdf, device, language):
    body, tokens, api_token = start_round(live_app, protocol_pdf, language=language, count=2)
    requests.post(f"{live_app.url}/api/v1/rounds/{body['id']}/cancel",
                  headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
    page = sized_page(browser, device, language)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    page.get_by_role("heading", name=TEXT[language]["cancelled"]).wait_for()
    assert page.locator("html").get_attribute("lang") == language
    check_page(page, f"sign-closed-cancelled-{device}-{language}")
    resp = page.goto(f"{live_app.url}/sign/{'z' * 43}")
    assert resp.status == 404
    page.get_by_role("heading", name=TEXT[language]["missing"]).wait_for()
    check_page(page, f"sign-missing-{device}-{language}")
    # the development outbox, where these links came from: its mail bodies wrap (an
    # inline style the page's own CSP blocks made it scroll 982 px sideways at 320 px)
    problems = watch(page)
    page.goto(f"{live_app.url}/dev/outbox")
    check_page(page, f"dev-outbox-{device}-{language}")
    assert problems == []
    page.context.close()


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_confirmation_passes_the_quality_bar(browser, live_app, protocol_pdf, device,
                                                 language):
    from signflow.demo import sign_over_http

    body, [link], _ = start_round(live_app, protocol_pdf, language=language, count=1)
    client = requests.Session()

    class Client:  # sign_over_http speaks the Flask test client's dialect
        def post(self, path, headers=None):
            return _Answer(client.post(live_app.url + path, headers=headers, timeout=10))

        def get(self, path):
            return _Answer(client.get(live_app.url + path, timeout=10))

    from tests.conftest import approve_with
    result = sign_over_http(Client(), link, approve_with(live_app.runtime))
    assert result["status"] == "complete"
    page = sized_page(browser, device, language)
    page.goto(f"{live_app.url}/sign/{link}")
    done = {"sv": "Du har signerat", "en": "You have signed"}[language]
    page.get_by_role("heading", name=done).wait_for(timeout=10_000)
    check_page(page, f"sign-done-{device}-{language}")
    page.context.close()


class _Answer:
    def __init__(self, resp):
        self.status_code, self._resp = resp.status_code, resp

    def get_json(self):
        return self._resp.json()


# --- ended links, in each way a link ends ---------------------------------------------------

CLOSED = {
    "sv": {"expired": "Länken har gått ut", "replaced_person": "Någon annan signerar i ditt ställe",
           "replaced": "Länken har ersatts", "completed": "Signeringen är klar"},
    "en": {"expired": "The link has expired", "replaced_person": "Someone else signs in your place",
           "replaced": "This link has been replaced", "completed": "Signing is complete"},
}


def _change_round(live_app, round_id: str, change) -> None:
    from signflow.core.models import Round
    from signflow.db import session_scope

    with session_scope(live_app.runtime.sessions) as session:
        change(session.get(Round, round_id))


def _see_closed(page, live_app, link: str, heading: str, name: str) -> None:
    resp = page.goto(f"{live_app.url}/sign/{link}")
    assert resp.status == 410, name
    page.get_by_role("heading", name=heading).wait_for()
    assert page.get_by_role("button").count() == 0  # nothing left to press
    assert "mailto:browser-" in page.content()  # whom to ask
    check_page(page, name)


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_each_ended_link_passes_the_quality_bar(browser, live_app, protocol_pdf, device,
                                                language):
    from datetime import timedelta

    from signflow.core.housekeeping import expire_due
    from signflow.core.models import utcnow
    from signflow.db import session_scope

    rt = live_app.runtime
    words = CLOSED[language]
    body, tokens, api_token = start_round(live_app, protocol_pdf, language=language)
    page = sized_page(browser, device, language)
    # the secretariat gives the first signer's place to someone else
    first = body["signers"][0]
    resp = requests.post(
        f"{live_app.url}/api/v1/rounds/{body['id']}/signers/{first['id']}/replace",
        headers={"Authorization": f"Bearer {api_token}"},
        json={"name": "Ersättare Ersättarsson", "email": f"ers-{uuid.uuid4().hex[:6]}@example.se",
              "personal_number": ""}, timeout=30)
    assert resp.status_code == 200, resp.text
    _see_closed(page, live_app, tokens[0], words["replaced_person"],
                f"sign-closed-replaced-person-{device}-{language}")

    # the second signer's link ended while the round runs (as an earlier link does once
    # a new one is sent): set here, since no use case ends one link alone just now
    def end_second_link(round_) -> None:
        round_.signers[1].token_expires_at = utcnow() - timedelta(minutes=1)
    _change_round(live_app, body["id"], end_second_link)
    _see_closed(page, live_app, tokens[1], words["replaced"],
                f"sign-closed-replaced-{device}-{language}")

    # the deadline passes: the hourly expiry ends the round
    def due(round_) -> None:
        round_.expires_at = utcnow() - timedelta(seconds=1)
    _change_round(live_app, body["id"], due)
    with session_scope(rt.sessions) as session:
        assert body["id"] in expire_due(session, rt.services, utcnow())
    _see_closed(page, live_app, tokens[2], words["expired"],
                f"sign-closed-expired-{device}-{language}")

    # a complete round, seen through a link whose signer had nothing left to do: no use
    # case leads there today, but the page is ready for it
    other, [link], _ = start_round(live_app, protocol_pdf, language=language, count=1)
    _change_round(live_app, other["id"], lambda r: setattr(r, "status", "completed"))
    _see_closed(page, live_app, link, words["completed"],
                f"sign-closed-completed-{device}-{language}")
    page.context.close()


# --- the keyboard alone ---------------------------------------------------------------------

def focused_id(page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")


def test_a_keyboard_user_starts_signing_and_cancels_at_a_computer(
        browser, live_app, live_round):
    _, tokens, _ = live_round
    page = desktop_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    page.locator("body").focus()
    tab_to(page, "#bankid")
    assert page.evaluate("document.activeElement.textContent") == "Signera med BankID"
    page.keyboard.press("Enter")
    wait_js(page, QR_SHOWN)
    assert focused_id(page) == "restart"  # not dropped to the top of the page
    order = _open_order_of(live_app, tokens[0])
    page.keyboard.press("Enter")  # Avbryt
    assert not page.locator("#qr").is_visible()
    assert focused_id(page) == "bankid"
    _wait_until_ended(live_app, order.order_ref)
    assert problems == []
    page.context.close()


def test_a_keyboard_user_opens_bankid_on_a_phone(browser, live_app, live_round):
    _, tokens, _ = live_round
    page, launched = phone_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[1]}")
    page.locator("body").focus()
    tab_to(page, "#bankid-open")
    assert page.evaluate("document.activeElement.textContent") == "Öppna BankID"
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 10
    while not launched and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert launched and launched[0].startswith("https://app.bankid.com/?autostarttoken=")
    tab_to(page, "#restart")
    page.keyboard.press("Enter")
    page.context.close()


def test_a_keyboard_user_declines_with_a_reason(browser, live_app, live_round):
    body, tokens, api_token = live_round
    page = desktop_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.locator("body").focus()
    tab_to(page, "#decline-part > summary")
    page.keyboard.press("Enter")
    assert page.locator("#decline-part").get_attribute("open") is not None
    tab_to(page, "#reason")
    page.keyboard.type("Paragraf 4 saknas")
    tab_to(page, "#confirm")
    page.keyboard.press("Space")
    assert page.locator("#confirm").is_checked()
    tab_to(page, "#decline")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Du har nekat att signera").wait_for(timeout=10_000)
    round_ = requests.get(f"{live_app.url}/api/v1/rounds/{body['id']}",
                          headers={"Authorization": f"Bearer {api_token}"}, timeout=10).json()
    assert round_["signers"][2]["decline_reason"] == "Paragraf 4 saknas"
    assert problems == []
    page.context.close()
