"""The webhooks page in a real browser: add one by keyboard, see its secret once,
the list and the deliveries; desktop and phone, Swedish and English (removing
one is tested without a browser, in tests/test_webhooks_page.py)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from signflow.core import webhooks
from signflow.core.models import Round
from tests.browser_kit import DESKTOP, PHONE, check_page
from tests.conftest import make_user, signers_spec
from tests.staff_kit import signed_in_context


@pytest.fixture
def secretary(live_app) -> tuple[str, str]:
    email = f"sekr-{uuid.uuid4().hex[:8]}@example.se"
    token = make_user(live_app.runtime, email, "secretariat", f"Kommun {uuid.uuid4().hex[:6]}")
    return email, token


@pytest.mark.parametrize(("viewport", "size"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_webhook_is_added_with_the_keyboard_and_its_deliveries_are_shown(
        browser, live_app, secretary, viewport, size):
    email, _ = secretary
    context = signed_in_context(browser, live_app, email, viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text)  # script errors, CSP violations
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    try:
        page.goto(f"{live_app.url}/account/webhooks")
        page.get_by_text("Organisationen har inga webhooks.").wait_for()
        check_page(page, f"webhooks-empty-sv-{size}")

        # a wrong address: said in the summary and at the field, nothing added
        page.locator("#hook-url").focus()
        page.keyboard.type("https://exa mple.se/in")
        page.keyboard.press("Enter")
        page.locator("#hook-url-error").wait_for()
        assert page.locator("#hook-url").get_attribute("aria-invalid") == "true"
        check_page(page, f"webhooks-error-sv-{size}")

        page.locator("#hook-url").fill("")
        page.locator("#hook-url").focus()
        page.keyboard.type("https://diarium.kommun.invalid/signflow")
        page.keyboard.press("Tab")  # to the first event: keep them all
        page.get_by_role("button", name="Lägg till webhook").focus()
        page.keyboard.press("Enter")
        page.locator("#created").wait_for()
        secret = page.locator("#new-token").input_value()
        assert secret.startswith("whsec_")
        check_page(page, f"webhooks-created-sv-{size}")

        page.goto(f"{live_app.url}/account/webhooks?lang=en")
        page.get_by_text("Your organisation's webhooks").wait_for()
        assert page.locator("html").get_attribute("lang") == "en"
        assert secret not in page.content()
        check_page(page, f"webhooks-listed-en-{size}")
    finally:
        context.close()
    assert errors == []


def test_the_deliveries_table_at_phone_size(browser, live_app, secretary, protocol_pdf):
    """Over HTTP: pyHanko cannot run in this thread, where Playwright's loop runs."""
    email, token = secretary
    auth = {"Authorization": f"Bearer {token}"}
    hook = requests.post(f"{live_app.url}/api/v1/webhooks", headers=auth, timeout=30,
                         json={"url": "https://tavla.kommun.invalid/mottagare/med/lang/adress"})
    assert hook.status_code == 201, hook.text
    made = requests.post(f"{live_app.url}/api/v1/rounds", headers=auth, timeout=60, data={
        "round": json.dumps({"title": "Protokoll", "language": "sv", "signers": signers_spec()})},
        files={"document": ("protokoll.pdf", protocol_pdf)})
    assert made.status_code == 201, made.text
    runtime = live_app.runtime
    with runtime.sessions() as s:  # recorded as a signature would (.invalid never answers)
        webhooks.emit(s, runtime.services, s.get(Round, made.json()["id"]), "signer.signed", {})
        s.commit()
    context = signed_in_context(browser, live_app, email, viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{live_app.url}/account/webhooks")
        page.locator("#deliveries").get_by_text("En undertecknare har signerat").wait_for()
        check_page(page, "webhooks-deliveries-sv-phone")
    finally:
        context.close()
