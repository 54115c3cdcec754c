"""Staff sign-in and the API tokens page in a real browser (Chromium via Playwright)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from signflow.adapters.bankid_sim import Persona
from signflow.core.accounts import set_personal_number, user_by_email
from signflow.db import session_scope
from tests.browser_kit import DESKTOP, check_page, phone_page
from tests.conftest import make_user

TEXTS = {
    "sv": {"start": "Logga in med BankID", "open": "Öppna BankID", "tokens": "API-nycklar",
           "create": "Skapa nyckel", "revoke": "Återkalla", "revoked": "Återkallad",
           "signed_out": "Du har loggat ut", "sign_out": "Logga ut", "copy": "Kopiera",
           "unknown": "inget konto för dig"},
    "en": {"start": "Sign in with BankID", "open": "Open BankID", "tokens": "API tokens",
           "create": "Create token", "revoke": "Revoke", "revoked": "Revoked",
           "signed_out": "You are now signed out", "sign_out": "Sign out", "copy": "Copy",
           "unknown": "no account for you"},
}


_GIVEN: set[str] = set()


def fresh_personal_number() -> str:
    """A valid personnummer no other test in this process uses.

    Random birth date and serial (about 20 million choices), Luhn check digit,
    and never one this process has handed out before: with one fixed date and
    1000 serials, two tests drew the same number about once in thirty runs.
    """
    while True:
        n = uuid.uuid4().int
        year, month, day, serial = 1940 + n % 60, 1 + n // 60 % 12, 1 + n // 720 % 28, n // 20160
        body = f"{year}{month:02d}{day:02d}{serial % 1000:03d}"
        if body not in _GIVEN:
            _GIVEN.add(body)
            break
    digits = [int(c) * (2 - i % 2) for i, c in enumerate(body[2:])]
    check = (10 - sum(d // 10 + d % 10 for d in digits) % 10) % 10
    return body + str(check)


@pytest.fixture
def staff_person(live_app):
    """A secretariat user who signs in with BankID, and the simulator person they are."""
    rt = live_app.runtime
    email = f"inlogg-{uuid.uuid4().hex[:6]}@example.se"
    make_user(rt, email)
    person = Persona(fresh_personal_number(), "Maja", "Andersson")
    with session_scope(rt.sessions) as session:
        set_personal_number(session, rt.services.sealer, user_by_email(session, email),
                            person.personal_number)
    return email, person


def approve_login(live_app, person: Persona, timeout: float = 10.0) -> None:
    """The person approves the sign-in order in the simulator's app."""
    sim = live_app.runtime.simulator
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        orders = [o for o in sim.open_orders() if o.kind == "auth"]
        if orders:
            sim.open(orders[0].order_ref)
            sim.approve(orders[0].order_ref, person)
            return
        time.sleep(0.1)
    raise AssertionError("no BankID sign-in order was started")


def wait_for_qr(page, timeout: float = 10.0) -> None:
    """Until the QR image has loaded (a loop: the page's CSP forbids wait_for_function)."""
    deadline = time.monotonic() + timeout
    while page.locator("#qr").evaluate("el => el.naturalWidth") == 0:
        assert time.monotonic() < deadline, "the QR code never loaded"
        page.wait_for_timeout(100)


def wait_until_at(page, url: str, timeout: float = 15.0) -> None:
    """Wait until *page* has loaded *url*."""
    deadline = time.monotonic() + timeout
    while page.url != url:
        if time.monotonic() > deadline:
            raise AssertionError(f"still at {page.url}, not {url}")
        page.wait_for_timeout(100)
    page.wait_for_load_state()


def visit_login(page, live_app, lang: str, next_: str = "/account/tokens") -> None:
    page.goto(f"{live_app.url}/login?lang={lang}&next={next_}")


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_sign_in_with_bankid_at_a_computer_then_create_and_revoke_a_token(
        browser, live_app, staff_person, lang):
    email, person = staff_person
    t = TEXTS[lang]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    visit_login(page, live_app, lang)
    assert page.locator("html").get_attribute("lang") == lang
    check_page(page, f"login-desktop-{lang}")
    page.get_by_role("button", name=t["start"]).click()
    wait_for_qr(page)
    assert "QR" in page.locator("#qr").get_attribute("alt")
    check_page(page, f"login-desktop-qr-{lang}")
    approve_login(live_app, person)
    page.wait_for_url(f"{live_app.url}/account/tokens", timeout=15_000)
    check_page(page, f"tokens-desktop-{lang}")

    page.locator("#token-name").fill("Ärendesystemet")
    page.get_by_role("button", name=t["create"]).click()
    shown = page.locator("#new-token").input_value()
    assert shown.startswith("sf_")
    check_page(page, f"tokens-created-desktop-{lang}")
    api = requests.get(f"{live_app.url}/api/v1/rounds",
                       headers={"Authorization": f"Bearer {shown}"}, timeout=10)
    assert api.status_code == 200

    page.goto(f"{live_app.url}/account/tokens")
    assert shown not in page.content()  # shown once only
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"{t['revoke']} Ärendesystemet").click()
    page.locator(".flash").wait_for()
    assert t["revoked"] in page.locator("#main").inner_text()
    check_page(page, f"tokens-revoked-desktop-{lang}")
    api = requests.get(f"{live_app.url}/api/v1/rounds",
                       headers={"Authorization": f"Bearer {shown}"}, timeout=10)
    assert api.status_code == 401

    page.get_by_role("button", name=t["sign_out"]).click()
    page.wait_for_url(f"{live_app.url}/login")
    assert t["signed_out"] in page.content()
    assert errors == []
    context.close()


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_sign_in_on_a_phone_opens_bankid_on_the_phone(browser, live_app, staff_person, lang):
    email, person = staff_person
    t = TEXTS[lang]
    page, launched = phone_page(browser)
    visit_login(page, live_app, lang)
    primary = page.get_by_role("button", name=t["open"])
    assert primary.is_visible()
    assert not page.get_by_role("button", name=t["start"]).is_visible()
    check_page(page, f"login-phone-{lang}")
    primary.click()
    deadline = time.monotonic() + 10
    while not launched and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert launched and launched[0].startswith("https://app.bankid.com/?autostarttoken=")
    approve_login(live_app, person)
    # not wait_for_url: the app link's navigation (answered 204, so aborted) may end
    # while it waits, and it takes that abort for the end of the navigation it awaits
    wait_until_at(page, f"{live_app.url}/account/tokens")
    check_page(page, f"tokens-phone-{lang}")
    page.locator("#token-name").fill("Skript")
    page.get_by_role("button", name=t["create"]).click()
    assert page.locator("#new-token").input_value().startswith("sf_")
    check_page(page, f"tokens-created-phone-{lang}")
    page.context.close()


def test_an_unknown_person_is_told_so_on_the_page(browser, live_app):
    page = browser.new_page(viewport=DESKTOP)
    visit_login(page, live_app, "sv")
    page.get_by_role("button", name=TEXTS["sv"]["start"]).click()
    page.locator("#qr").wait_for(state="visible")
    approve_login(live_app, Persona(fresh_personal_number(), "Okänd", "Person"))
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=15_000)
    assert TEXTS["sv"]["unknown"] in alert.inner_text()
    assert "Okänd" not in page.content()
    assert page.get_by_role("button", name=TEXTS["sv"]["start"]).is_visible()
    check_page(page, "login-unknown-person-sv")
    page.close()


def test_cancel_ends_the_order_and_leaves_no_stale_controls(browser, live_app):
    page = browser.new_page(viewport=DESKTOP)
    visit_login(page, live_app, "en")
    page.get_by_role("button", name=TEXTS["en"]["start"]).click()
    page.locator("#qr").wait_for(state="visible")
    sim = live_app.runtime.simulator
    (order,) = [o for o in sim.open_orders() if o.kind == "auth"]
    page.get_by_role("button", name="Cancel").click()
    assert not page.locator("#qr").is_visible() and not page.locator("#cancel").is_visible()
    deadline = time.monotonic() + 10
    while order.order_ref in {o.order_ref for o in sim.open_orders()} \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert order.order_ref not in {o.order_ref for o in sim.open_orders()}
    page.close()


def test_a_stranger_on_the_tokens_page_is_sent_to_login(browser, live_app):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{live_app.url}/account/tokens")
    assert page.url == f"{live_app.url}/login?next=/account/tokens"
    page.close()


@pytest.mark.parametrize(("lang", "viewport"), [("sv", DESKTOP), ("en", None)])
def test_a_single_sign_on_refusal_passes_the_quality_bar(browser, live_app, settings, lang,
                                                         viewport):
    """The page single sign-on refuses with, as the OIDC tests reach it (a provider of
    the test's own; the shared server has none), shown in the browser with its own
    headers and the live server's styles."""
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.test_login import TinyProvider, oidc_sign_in

    provider = TinyProvider()
    configured = settings.with_overrides(
        oidc_issuer=provider.issuer, oidc_client_id=provider.client[0],
        oidc_client_secret=provider.client[1],
        extra={"oidc_organisation": "Familjen Helsingborg"})
    rt = build_runtime(configured)
    try:
        client = create_app(configured, rt).test_client()
        if lang == "en":
            client.get("/login?lang=en")  # the language is remembered for the next pages
        provider.person = {"email": "okand@example.se", "email_verified": True}
        refused = oidc_sign_in(client) if lang == "sv" else _oidc_sign_in_en(client)
    finally:
        rt.close()
        provider.close()
    assert refused.status_code == 403
    headers = {k: v for k, v in refused.headers.items()
               if k.lower() in ("content-type", "content-security-policy")}
    page = phone_page(browser)[0] if viewport is None else \
        browser.new_context(viewport=viewport).new_page()
    try:
        page.route(f"{live_app.url}/login/oidc/callback*", lambda route: route.fulfill(
            status=403, headers=headers, body=refused.get_data()))
        page.goto(f"{live_app.url}/login/oidc/callback?state=x&code=y")
        page.get_by_text(TEXTS[lang]["unknown"]).first.wait_for()
        assert page.locator("html").get_attribute("lang") == lang
        check_page(page, f"login-refused-{lang}-{'desktop' if viewport else 'phone'}")
    finally:
        page.context.close()


def _oidc_sign_in_en(client):
    """tests.test_login.oidc_sign_in, on the English pages."""
    from urllib.parse import urlsplit

    start = client.get("/login/oidc?next=/rounds")
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")
