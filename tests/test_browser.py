"""The signing page in a real browser (headless Chromium driven by Playwright)."""

import json
import shutil
import uuid

import pytest
import requests

from signflow.demo import links_in_outbox
from tests.conftest import make_user, signers_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("LOUD SKIP: playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("LOUD SKIP: Chromium is not installed (make test installs it with apt "
                    "where it can)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


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
