"""The signing page in a real browser (headless Chromium driven by Playwright).

The app runs with its real Content-Security-Policy, so these tests wait with
``wait_js`` (Playwright's ``wait_for_function`` evaluates a string, which the
CSP rightly forbids) and fail on any CSP violation the page reports.
"""

import base64
import json
import time
import uuid

import pytest
import requests

from signflow.demo import links_once_sent
from tests.browser_kit import (
    DESKTOP,
    NARROWEST,
    PHONE,
    check_page,
    keep_screenshot,
    phone_page,
)
from tests.conftest import make_user, signers_spec, wait_for_mail


def start_round(live_app, protocol_pdf, *, language: str = "sv", count: int = 3):
    rt = live_app.runtime
    token = make_user(rt, f"browser-{uuid.uuid4().hex[:8]}@example.se")
    signers = signers_spec()[:count]
    resp = requests.post(f"{live_app.url}/api/v1/rounds",
                         headers={"Authorization": f"Bearer {token}"},
                         data={"round": json.dumps({"title": "Protokoll nr 2 2026",
                                                    "language": language,
                                                    "signers": signers})},
                         files={"document": ("p.pdf", protocol_pdf, "application/pdf")},
                         timeout=30)
    assert resp.status_code == 201, resp.text
    # the live server mails from its delivery thread, just after answering
    links = links_once_sent(live_app.settings.data_dir / "outbox", [s["email"] for s in signers])
    return resp.json(), [links[s["email"]] for s in signers], token


@pytest.fixture
def live_round(live_app, protocol_pdf):
    return start_round(live_app, protocol_pdf)


def wait_js(page, function: str, timeout: float = 10.0) -> None:
    """Wait until the JavaScript *function* (no arguments) returns something truthy."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {function}")
        page.wait_for_timeout(100)


def load_all_pages(page) -> None:
    """Scroll through the document so that every lazily loaded page is drawn (for the
    screenshot), then back to the top."""
    for img in page.locator("img.page").all():
        img.scroll_into_view_if_needed()
    wait_js(page, "() => [...document.querySelectorAll('img.page')]"
                  ".every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("() => window.scrollTo(0, 0)")


QR_SHOWN = "() => { const q = document.getElementById('qr'); return q && q.naturalWidth > 0; }"


def watch(page) -> list[str]:
    """Script errors and CSP violations on *page*, as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text else None)
    return problems


def desktop_page(browser):
    return browser.new_context(viewport=DESKTOP).new_page()


def _open_order_of(live_app, token: str):
    """The simulator's open order started from *token*'s signer."""
    from signflow.core import rounds
    from signflow.db import session_scope

    rt = live_app.runtime
    with session_scope(rt.sessions) as session:
        signer = rounds.signer_for_token(session, token, rt.services.clock.now())
        ref = signer.pending_order_ref
    return rt.simulator.orders[ref]


def _wait_until_ended(live_app, order_ref: str) -> None:
    orders = live_app.runtime.simulator.orders  # read again on each look
    deadline = time.monotonic() + 10
    while orders[order_ref].status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    order = orders[order_ref]
    assert (order.status, order.hint) == ("failed", "cancelled")


# --- signing ------------------------------------------------------------------------------

def open_orders_of(sim, round_id: str) -> list:
    """The simulator's open orders for *round_id* (its visible text names the document):
    the live app's simulator is shared with every browser test before this one."""
    return [o for o in sim.open_orders()
            if round_id in base64.b64decode(o.visible_b64 or "").decode("utf-8", "replace")]


def test_sign_with_bankid_in_the_browser(browser, live_app, live_round):
    body, tokens, _ = live_round
    page = desktop_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    assert "Du har signerat" not in page.content()
    page.get_by_role("button", name="Signera med BankID").click()
    page.locator("#qr").wait_for(state="visible")
    qr = page.get_by_role("img", name="QR-kod för BankID – skanna med BankID-appen")
    assert qr.is_visible()
    sim = live_app.runtime.simulator
    wait_js(page, QR_SHOWN)
    orders = open_orders_of(sim, body["id"])
    assert len(orders) == 1
    sim.open(orders[0].order_ref)
    sim.approve(orders[0].order_ref)
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    assert page.get_by_text("De andra som ska signera får egna länkar").is_visible()
    assert page.get_by_text(orders[0].order_ref).is_visible()  # the transaction ID
    keep_screenshot(page, "sign-done-desktop-sv")
    assert problems == []
    page.context.close()


def test_a_phone_signs_on_the_same_device(browser, live_app, live_round):
    from signflow.adapters.bankid_sim import PERSONAS

    body, tokens, _ = live_round
    page, launched = phone_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[1]}")
    open_app = page.get_by_role("button", name="Öppna BankID", exact=True)
    qr_instead = page.get_by_role("button", name="BankID på en annan enhet (QR-kod)")
    assert open_app.is_visible() and qr_instead.is_visible()
    big, small = open_app.bounding_box(), qr_instead.bounding_box()
    assert big["y"] < small["y"] and big["width"] >= 0.75 * PHONE["width"]  # it leads
    assert not page.locator("#qr").is_visible()
    assert page.get_by_role("button", name="Signera med BankID").count() == 0  # the computer's
    assert "Du har signerat" not in page.content()
    open_app.click()
    page.get_by_text("Försöker starta BankID-appen.").wait_for(timeout=10_000)
    wait_js(page, "() => document.getElementById('launch').href.includes('autostarttoken')")
    sim = live_app.runtime.simulator
    [order] = open_orders_of(sim, body["id"])
    assert launched == [f"https://app.bankid.com/?autostarttoken={order.auto_start_token}"
                        "&redirect=null"]
    assert order.return_url == f"{live_app.url}/sign/{tokens[1]}#bankid"
    assert not page.locator("#qr").is_visible()
    sim.open(order.order_ref)
    sim.approve(order.order_ref, PERSONAS[1])
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    check_page(page, "sign-done-phone-sv")
    assert problems == []
    page.context.close()


def test_a_failed_poll_is_retried_not_the_end_of_the_order(browser, live_app, live_round):
    """A 503 (the database restarting) and a lost answer: "trying again", then signed."""
    from signflow.adapters.bankid_sim import PERSONAS

    _, tokens, _ = live_round
    page = desktop_page(browser)
    problems = watch(page)
    failed: list[str] = []

    def flaky(route):
        if len(failed) < 2 and route.request.method == "GET":
            failed.append(route.request.url)
            if len(failed) == 1:
                route.fulfill(status=503, content_type="text/html", body="<h1>503</h1>")
            else:
                route.abort("connectionreset")
            return
        route.continue_()

    page.route(f"{live_app.url}/sign/{tokens[2]}/bankid?flow=*", flaky)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.get_by_role("button", name="Signera med BankID").click()
    page.get_by_text("Tjänsten svarade inte. Försöker igen…").wait_for(timeout=10_000)
    assert page.locator("#qr").is_visible() and page.locator("#restart").is_visible()
    deadline = time.monotonic() + 15
    while len(failed) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(failed) == 2
    page.get_by_text("Starta BankID-appen.").wait_for(timeout=10_000)  # polling again
    order = _open_order_of(live_app, tokens[2])
    assert order.status == "pending"
    live_app.runtime.simulator.open(order.order_ref)
    live_app.runtime.simulator.approve(order.order_ref, PERSONAS[2])
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    assert problems == []
    page.context.close()


def test_a_round_cancelled_while_the_qr_is_up_leaves_no_stale_controls(
        browser, live_app, live_round):
    body, tokens, api_token = live_round
    page = desktop_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    page.get_by_role("button", name="Signera med BankID").click()
    wait_js(page, QR_SHOWN)
    requests.post(f"{live_app.url}/api/v1/rounds/{body['id']}/cancel",
                  headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
    # the next poll finds the link ended: the page itself now says what happened
    page.get_by_role("heading", name="Signeringen har avbrutits").wait_for(timeout=15_000)
    assert page.locator("#qr").count() == 0 and page.get_by_role("button").count() == 0
    assert problems == []
    page.context.close()


def test_leaving_the_page_cancels_the_order(browser, live_app, live_round):
    body, tokens, _ = live_round
    page = desktop_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.get_by_role("button", name="Signera med BankID").click()
    page.locator("#qr").wait_for(state="visible")
    sim = live_app.runtime.simulator
    assert len(open_orders_of(sim, body["id"])) == 1
    page.goto("about:blank")  # pagehide → fetch(cancel, keepalive)
    deadline = time.monotonic() + 10
    while open_orders_of(sim, body["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_orders_of(sim, body["id"]) == []
    page.context.close()


def test_a_narrow_touch_screen_gets_the_phone_layout_and_the_qr_is_one_tap_away(
        browser, live_app, live_round):
    _, tokens, _ = live_round
    # a computer's window as narrow (200 % zoom) with a mouse: the QR code first, since
    # BankID on a computer cannot sign with Mobilt BankID (the language review)
    page, _ = phone_page(browser, user_agent=None)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    assert page.get_by_role("button", name="Signera med BankID").is_visible()
    assert not page.get_by_role("button", name="Öppna BankID", exact=True).is_visible()
    page.context.close()
    # a touch screen the server does not know by its user agent: the phone's layout
    page, launched = phone_page(browser, user_agent=None, has_touch=True)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    assert page.get_by_role("button", name="Öppna BankID", exact=True).is_visible()
    page.get_by_role("button", name="BankID på en annan enhet (QR-kod)").click()
    wait_js(page, QR_SHOWN)
    page.get_by_text("Starta BankID-appen.").wait_for(timeout=10_000)
    assert launched == []  # the QR flow never opens the app here
    order = _open_order_of(live_app, tokens[2])
    assert order.return_url == ""
    page.get_by_role("button", name="Avbryt").click()
    _wait_until_ended(live_app, order.order_ref)
    page.context.close()


def test_after_cancel_no_stale_controls_remain(browser, live_app, live_round):
    _, tokens, _ = live_round
    page = desktop_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    assert page.get_by_role("button", name="Öppna BankID på den här enheten").is_visible()
    page.get_by_role("button", name="Signera med BankID").click()
    wait_js(page, QR_SHOWN)
    first = _open_order_of(live_app, tokens[0])
    page.get_by_role("button", name="Avbryt").click()
    for gone in ("#qr", "#restart", "#launch", "#switch-here", "#message"):
        assert not page.locator(gone).is_visible(), gone
    assert page.locator("#qr").get_attribute("src") is None
    assert page.get_by_role("button", name="Signera med BankID").is_visible()
    _wait_until_ended(live_app, first.order_ref)
    sim = live_app.runtime.simulator
    # a failed order (cancelled in the app) leaves its message and a fresh start, no QR
    page.get_by_role("button", name="Signera med BankID").click()
    wait_js(page, QR_SHOWN)
    sim.user_cancel(_open_order_of(live_app, tokens[0]).order_ref)
    page.get_by_text("Åtgärden avbröts.").wait_for(timeout=10_000)
    assert not page.locator("#qr").is_visible() and not page.locator("#restart").is_visible()
    assert page.get_by_role("button", name="Signera med BankID").is_visible()
    page.context.close()


def test_coming_back_from_the_app_follows_the_open_order(browser, live_app, live_round):
    """The order's returnUrl (…/sign/<token>#bankid) opens a page that picks up polling."""
    from signflow.adapters.bankid_sim import PERSONAS

    body, tokens, _ = live_round
    page, launched = phone_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.get_by_role("button", name="Öppna BankID", exact=True).click()
    wait_js(page, "() => document.getElementById('launch').href.includes('autostarttoken')")
    order = _open_order_of(live_app, tokens[2])
    # the app sends the browser back to the returnUrl: a fresh load of the signer's page
    # (the same tab: a second page in this context sometimes never opened under load)
    page.goto(order.return_url, timeout=30_000)
    page.reload(timeout=30_000)  # a fragment-only change does not reload by itself
    page.get_by_text("Försöker starta BankID-appen.").wait_for(timeout=10_000)
    assert not page.get_by_role("button", name="Öppna BankID", exact=True).is_visible()
    live_app.runtime.simulator.open(order.order_ref)
    live_app.runtime.simulator.approve(order.order_ref, PERSONAS[2])
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    page.context.close()


def test_a_reminder_leaves_the_old_link_working(browser, live_app, live_round):
    body, tokens, api_token = live_round
    resp = requests.post(f"{live_app.url}/api/v1/rounds/{body['id']}/remind",
                         headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
    assert resp.status_code == 200
    reminded = wait_for_mail(live_app.settings, lambda m: m["to"] == body["signers"][0]["email"]
                             and m["subject"].startswith("Påminnelse"))
    assert reminded and f"/sign/{tokens[0]}" in reminded[-1]["body"]
    page = desktop_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")  # the link from the first e-mail
    page.get_by_role("button", name="Signera med BankID").click()
    wait_js(page, QR_SHOWN)
    page.get_by_role("button", name="Avbryt").click()
    page.context.close()


# --- reading ------------------------------------------------------------------------------

def test_the_protocol_is_readable_on_a_narrow_phone(browser, live_app, live_round):
    _, tokens, _ = live_round
    page, _ = phone_page(browser, viewport=NARROWEST)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    first = page.get_by_role("img", name="Sida 1 av 3", exact=False)
    first.scroll_into_view_if_needed()
    wait_js(page, "() => document.querySelector('img.page').naturalWidth > 0")
    narrow = first.bounding_box()["width"]
    assert 280 <= narrow <= NARROWEST["width"]
    page.get_by_role("button", name="Zooma in").click()
    page.get_by_role("button", name="Zooma in").click()
    assert first.bounding_box()["width"] >= 1.9 * narrow  # twice as wide, inside its frame
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROWEST["width"]
    page.get_by_role("button", name="Zooma ut").click()
    page.get_by_role("button", name="Zooma ut").click()
    assert page.get_by_role("button", name="Zooma ut").is_disabled()
    assert abs(first.bounding_box()["width"] - narrow) < 2
    pdf = page.get_by_role("link", name="Öppna PDF")
    assert pdf.get_attribute("href") == f"/sign/{tokens[0]}/document"
    assert problems == []
    page.context.close()


# --- declining ----------------------------------------------------------------------------

def test_decline_asks_for_a_reason_and_a_confirmation(browser, live_app, live_round):
    body, tokens, api_token = live_round
    page = desktop_page(browser)
    problems = watch(page)
    page.goto(f"{live_app.url}/sign/{tokens[1]}")
    page.get_by_text("Neka signering").first.click()
    page.get_by_role("button", name="Neka signering").click()  # nothing filled in
    page.get_by_text("Skriv varför du nekar.").wait_for(timeout=10_000)
    assert page.get_by_text("Kryssa i rutan för att bekräfta att du nekar.").is_visible()
    check_page(page, "sign-decline-errors-desktop-sv")
    page.get_by_label("Skäl (visas för sekretariatet)").fill("Fel datum i paragraf 3")
    page.get_by_role("button", name="Neka signering").click()  # still not confirmed
    page.get_by_text("Kryssa i rutan för att bekräfta att du nekar.").wait_for()
    assert page.get_by_label("Skäl (visas för sekretariatet)").input_value() == \
        "Fel datum i paragraf 3"
    page.get_by_label("Ja, jag nekar att signera protokollet").check()
    page.get_by_role("button", name="Neka signering").click()
    page.get_by_role("heading", name="Du har nekat att signera").wait_for(timeout=10_000)
    round_ = requests.get(f"{live_app.url}/api/v1/rounds/{body['id']}",
                          headers={"Authorization": f"Bearer {api_token}"}, timeout=10).json()
    assert round_["status"] == "declined"
    assert round_["signers"][1]["decline_reason"] == "Fel datum i paragraf 3"
    check_page(page, "sign-declined-desktop-sv")
    # another signer's link now says what happened, and whom to ask
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    page.get_by_role("heading", name="Signeringen är avslutad").wait_for()
    assert "mailto:browser-" in page.content()
    assert page.get_by_role("button").count() == 0  # nothing left to press
    check_page(page, "sign-closed-round-declined-desktop-sv")
    assert problems == []
    page.context.close()
