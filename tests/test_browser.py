"""The signing page in a real browser (headless Chromium driven by Playwright)."""

import base64
import json
import uuid

import pytest
import requests

from signflow.demo import links_in_outbox
from tests.browser_kit import PHONE, phone_page, serious_violations  # noqa: F401
from tests.conftest import make_user, signers_spec


@pytest.fixture
def live_round(live_app, protocol_pdf):
    rt = live_app.runtime
    token = make_user(rt, f"browser-{uuid.uuid4().hex[:8]}@example.se")
    signers = signers_spec()
    resp = requests.post(f"{live_app.url}/api/v1/rounds",
                         headers={"Authorization": f"Bearer {token}"},
                         data={"round": json.dumps({"title": "Protokoll nr 2 2026",
                                                    "signers": signers})},
                         files={"document": ("p.pdf", protocol_pdf, "application/pdf")},
                         timeout=30)
    assert resp.status_code == 201, resp.text
    links = links_in_outbox(live_app.settings.data_dir / "outbox")
    return resp.json(), [links[s["email"]] for s in signers], token


def test_sign_with_bankid_in_the_browser(browser, live_app, live_round, tmp_path):
    body, tokens, _ = live_round
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    assert "Du har signerat" not in page.content()
    page.get_by_role("button", name="Signera med BankID").click()
    page.locator("#qr").wait_for(state="visible")
    sim = live_app.runtime.simulator
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    orders = sim.open_orders()
    assert len(orders) == 1
    sim.open(orders[0].order_ref)
    sim.approve(orders[0].order_ref)
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    page.screenshot(path=str(tmp_path / "signed.png"))
    assert errors == []
    page.close()


def test_decline_in_the_browser(browser, live_app, live_round):
    body, tokens, api_token = live_round
    page = browser.new_page()
    page.goto(f"{live_app.url}/sign/{tokens[1]}")
    page.get_by_text("Neka signering").first.click()
    page.locator("textarea[name=reason]").fill("Fel datum i paragraf 3")
    page.get_by_role("button", name="Neka signering").click()
    page.get_by_text("Du har nekat att signera").wait_for(timeout=10_000)
    round_ = requests.get(f"{live_app.url}/api/v1/rounds/{body['id']}",
                          headers={"Authorization": f"Bearer {api_token}"}, timeout=10).json()
    assert round_["status"] == "declined"
    page.close()


def test_leaving_the_page_cancels_the_order(browser, live_app, live_round):
    body, tokens, _ = live_round
    page = browser.new_page()
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.get_by_role("button", name="Signera med BankID").click()
    page.locator("#qr").wait_for(state="visible")
    sim = live_app.runtime.simulator
    assert len(sim.open_orders()) == 1
    page.goto("about:blank")  # pagehide → sendBeacon(cancel)
    import time

    deadline = time.monotonic() + 10
    while sim.open_orders() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sim.open_orders() == []
    page.close()


def test_a_phone_leads_with_open_bankid(browser, live_app, live_round):
    from signflow.adapters.bankid_sim import PERSONAS

    _, tokens, _ = live_round
    page, launched = phone_page(browser)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
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
    page.wait_for_function("document.getElementById('launch').href.includes('autostarttoken')")
    sim = live_app.runtime.simulator
    [order] = sim.open_orders()
    assert launched == [f"https://app.bankid.com/?autostarttoken={order.auto_start_token}"
                        "&redirect=null"]
    assert order.return_url == f"{live_app.url}/sign/{tokens[1]}#bankid"
    assert not page.locator("#qr").is_visible()
    sim.open(order.order_ref)
    sim.approve(order.order_ref, PERSONAS[1])
    page.get_by_text("Du har signerat").wait_for(timeout=15_000)
    assert errors == []
    page.context.close()


def test_a_narrow_window_gets_the_phone_layout_and_the_qr_is_one_tap_away(
        browser, live_app, live_round):
    _, tokens, _ = live_round
    page, launched = phone_page(browser, user_agent=None)  # a desktop browser, made narrow
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    assert page.get_by_role("button", name="Öppna BankID", exact=True).is_visible()
    page.get_by_role("button", name="BankID på en annan enhet (QR-kod)").click()
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    page.get_by_text("Starta BankID-appen.").wait_for(timeout=10_000)
    assert launched == []  # the QR flow never opens the app here
    order = _open_order_of(live_app, tokens[2])
    assert order.return_url == ""
    page.get_by_role("button", name="Avbryt").click()
    _wait_until_ended(live_app, order.order_ref)
    page.context.close()


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
    import time

    order = live_app.runtime.simulator.orders[order_ref]
    deadline = time.monotonic() + 10
    while order.status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (order.status, order.hint) == ("failed", "cancelled")


def test_after_cancel_no_stale_controls_remain(browser, live_app, live_round):
    _, tokens, _ = live_round
    page = browser.new_page()
    page.goto(f"{live_app.url}/sign/{tokens[0]}")
    assert page.get_by_role("button", name="Öppna BankID på den här enheten").is_visible()
    page.get_by_role("button", name="Signera med BankID").click()
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
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
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    sim.user_cancel(_open_order_of(live_app, tokens[0]).order_ref)
    page.get_by_text("Åtgärden avbröts.").wait_for(timeout=10_000)
    assert not page.locator("#qr").is_visible() and not page.locator("#restart").is_visible()
    assert page.get_by_role("button", name="Signera med BankID").is_visible()
    page.close()


def test_coming_back_from_the_app_follows_the_open_order(browser, live_app, live_round):
    """The order's returnUrl (…/sign/<token>#bankid) opens a page that picks up polling."""
    from signflow.adapters.bankid_sim import PERSONAS

    _, tokens, _ = live_round
    page, launched = phone_page(browser)
    page.goto(f"{live_app.url}/sign/{tokens[2]}")
    page.get_by_role("button", name="Öppna BankID", exact=True).click()
    page.wait_for_function("document.getElementById('launch').href.includes('autostarttoken')")
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


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_signing_page_has_no_serious_accessibility_violations(
        browser, live_app, protocol_pdf, device, language, tmp_path):
    """At rest, with the QR code up, and after a refusal: axe-core finds nothing serious."""
    from signflow.adapters.bankid_sim import PERSONAS

    rt = live_app.runtime
    token = make_user(rt, f"a11y-{uuid.uuid4().hex[:8]}@example.se")
    signers = signers_spec()[:1]
    resp = requests.post(f"{live_app.url}/api/v1/rounds",
                         headers={"Authorization": f"Bearer {token}"},
                         data={"round": json.dumps({"title": "Protokoll nr 2 2026",
                                                    "language": language,
                                                    "signers": signers})},
                         files={"document": ("p.pdf", protocol_pdf, "application/pdf")},
                         timeout=30)
    assert resp.status_code == 201, resp.text
    link = links_in_outbox(live_app.settings.data_dir / "outbox")[signers[0]["email"]]
    if device == "phone":
        page, _ = phone_page(browser)
    else:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_app.url}/sign/{link}")
    findings = serious_violations(page)
    other = {"sv": "BankID på en annan enhet (QR-kod)", "en": "BankID on another device (QR code)"}
    start = {"sv": "Signera med BankID", "en": "Sign with BankID"}
    if device == "phone":
        page.get_by_role("button", name=other[language]).click()
    else:
        page.get_by_role("button", name=start[language]).click()
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    findings += serious_violations(page)
    round_id = resp.json()["id"]
    [order] = [o for o in rt.simulator.open_orders()
               if round_id in base64.b64decode(o.visible_b64).decode()]
    rt.simulator.open(order.order_ref)
    rt.simulator.approve(order.order_ref, PERSONAS[2])  # the wrong person
    refused = {"sv": "inte den inbjudna", "en": "not the person who was invited"}
    page.get_by_text(refused[language]).wait_for(timeout=15_000)
    findings += serious_violations(page)
    page.screenshot(path=str(tmp_path / f"{device}-{language}.png"), full_page=True)
    page.context.close()
    assert findings == []
