"""What the browser tests share: phone-sized pages, axe-core, screenshots, and rounds
started and signed on the live app over HTTP (where the browser is not the point).

The ``browser`` fixture itself (one headless Debian Chromium for the whole
run) lives in conftest.py.  Screenshots go to ``SIGNFLOW_SCREENSHOTS`` (or
``test-artifacts/screenshots``) so that they are kept after the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
PHONE = {"width": 390, "height": 844}
NARROWEST = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def phone_page(browser, *, user_agent: str | None = IPHONE, viewport: dict | None = None,
               has_touch: bool = False):
    """A 390 px wide page; the BankID app link is caught (204: the browser stays put)."""
    context = browser.new_context(viewport=viewport or PHONE, user_agent=user_agent,
                                  has_touch=has_touch)
    page = context.new_page()
    launched: list[str] = []

    def app(route):
        launched.append(route.request.url)
        route.fulfill(status=204)

    page.route("https://app.bankid.com/**", app)
    return page, launched


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on *page*, one line each."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("LOUD SKIP: axe-playwright-python is not installed (pip install -e "
                    "'.[test]'), so the page's accessibility is not checked")
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} – {len(v['nodes'])} element(s)"
            for v in found if v["impact"] in ("serious", "critical")]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its window (0: no sideways scrolling)."""
    return int(page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"))


def screenshots_dir() -> Path:
    path = Path(os.environ.get("SIGNFLOW_SCREENSHOTS") or "test-artifacts/screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact, named *name*.png."""
    path = screenshots_dir() / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page, name: str) -> None:
    """The quality bar for any page at rest: no serious axe finding, no sideways scroll,
    and a screenshot kept.  A phone-sized page is also looked at 360 px wide (the
    narrowest phone WCAG's reflow asks for), then given its own size back."""
    keep_screenshot(page, name)
    assert serious_violations(page) == [], name
    assert horizontal_overflow(page) <= 0, f"{name} scrolls sideways"
    size = page.viewport_size
    if size and NARROWEST["width"] < size["width"] <= PHONE["width"]:
        page.set_viewport_size({"width": NARROWEST["width"], "height": size["height"]})
        try:
            page.wait_for_timeout(50)  # let layout and lazy images settle
            keep_screenshot(page, f"{name}-360")
            assert horizontal_overflow(page) <= 0, f"{name} scrolls sideways at 360 px"
        finally:
            page.set_viewport_size(size)


def api_round(live_app, token: str, pdf: bytes, signers: list[dict], **spec) -> dict:
    """Start a round on the live app through the API, as *token*'s user; its JSON."""
    spec = {"title": "Protokoll nr 2 2026", "language": "sv", "signers": signers, **spec}
    resp = requests.post(f"{live_app.url}/api/v1/rounds",
                         headers={"Authorization": f"Bearer {token}"},
                         data={"round": json.dumps(spec)},
                         files={"document": ("p.pdf", pdf, "application/pdf")}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()


def sign_live(live_app, link: str, timeout: float = 30.0) -> str:
    """Sign through *link* on the live app as its invited person: the order's end status."""
    from tests.conftest import approve_with

    base = f"{live_app.url}/sign/{link}/bankid"
    started = requests.post(base, headers={"Accept": "application/json"}, timeout=10)
    assert started.status_code == 200, started.text
    approve_with(live_app.runtime)(started.json()["order_ref"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(base, timeout=10).json()["status"]
        if status != "pending":
            return status
        time.sleep(0.05)
    raise AssertionError("the BankID order did not finish")


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element *selector* names has the focus (it must be reachable
    by keyboard)."""
    for _ in range(limit):
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")
