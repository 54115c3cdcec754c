"""The whole journey in Chromium, as people take it (issue 9's acceptance path).

The secretariat signs in with BankID and starts a round through the form;
a reminder goes out and the links already mailed keep working; three signers
sign (one on a phone, on the same device); the secretariat downloads the
signed protocol from the round page; an auditor, not signed in, verifies it
and a tampered copy.  Screenshots of each step are kept.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from signflow.adapters.bankid_sim import PERSONAS, Persona
from signflow.core.accounts import set_personal_number, user_by_email
from signflow.core.models import Round
from signflow.db import session_scope
from signflow.demo import links_once_sent
from tests.browser_kit import DESKTOP, check_page, keep_screenshot, phone_page
from tests.conftest import make_user, tamper, wait_for_mail
from tests.test_browser_login import approve_login, fresh_personal_number, wait_for_qr
from tests.test_browser_secretariat import fill_signer, wait_for_thumbnails


def round_status(live_app, round_id: str) -> str:
    with session_scope(live_app.runtime.sessions) as session:
        return session.scalar(select(Round.status).where(Round.id == round_id))


def wait_for_round(live_app, round_id: str, status: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while round_status(live_app, round_id) != status:
        assert time.monotonic() < deadline, f"round never became {status}"
        time.sleep(0.2)


def approve_signing(live_app, persona: Persona, timeout: float = 15.0) -> str:
    sim = live_app.runtime.simulator
    deadline = time.monotonic() + timeout
    while True:
        orders = [o for o in sim.open_orders() if o.kind != "auth"]
        if orders:
            sim.open(orders[0].order_ref)
            sim.approve(orders[0].order_ref, persona)
            return orders[0].order_ref
        assert time.monotonic() < deadline, "no signing order was started"
        time.sleep(0.1)


def test_from_sign_in_to_a_verified_protocol(browser, live_app, protocol_pdf, tmp_path):
    rt = live_app.runtime
    tag = uuid.uuid4().hex[:6]
    email = f"journey-{tag}@example.se"
    make_user(rt, email, "secretariat", f"Journey kommun {tag}")
    staff = Persona(fresh_personal_number(), "Sara", "Sekreterare")
    with session_scope(rt.sessions) as session:
        set_personal_number(session, rt.services.sealer, user_by_email(session, email),
                            staff.personal_number)

    # the secretariat: /rounds sends a stranger to sign in; BankID at the computer
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{live_app.url}/rounds")
    page.wait_for_url("**/login?next=/rounds")
    page.get_by_role("button", name="Logga in med BankID").click()
    wait_for_qr(page)
    approve_login(live_app, staff)
    page.wait_for_url(f"{live_app.url}/rounds", timeout=15_000)

    # a new round through the form
    page.get_by_role("link", name="Ny signering").last.click()
    upload = tmp_path / "protokoll.pdf"
    upload.write_bytes(protocol_pdf)
    page.locator("#document").set_input_files(str(upload))
    wait_for_thumbnails(page)
    page.locator("#title").fill(f"Protokoll kommunstyrelsen {tag}")
    signers = [(p, f"{p.given_name.lower()}-{tag}@example.se") for p in PERSONAS]
    for i, (role, (person, address)) in enumerate(
            zip(["sekreterare", "justerare", "ordforande"], signers, strict=True)):
        fill_signer(page, i, person.name, address, role)
    keep_screenshot(page, "journey-1-form")
    page.get_by_role("button", name="Starta signeringen").last.click()
    page.get_by_text("Signeringen har startat").wait_for(timeout=30_000)
    round_id = page.url.rstrip("/").rsplit("/", 1)[1].split("?")[0]
    outbox = live_app.settings.data_dir / "outbox"
    links = links_once_sent(outbox, [address for _, address in signers])
    first_links = [links[address] for _, address in signers]

    # a reminder: every signer is mailed again, and the links they have still work
    page.get_by_role("button", name="Påminn dem som inte har signerat").click()
    page.locator(".flash").wait_for()
    reminders = wait_for_mail(live_app.settings, lambda m: m["subject"].startswith("Påminnelse")
                              and m["to"] in {address for _, address in signers}, len(signers))
    assert sorted(m["to"] for m in reminders) == sorted(address for _, address in signers)
    assert all(f"/sign/{first_links[[a for _, a in signers].index(m['to'])]}" in m["body"]
               for m in reminders)  # the same links as before
    check_page(page, "journey-2-round-pending")

    # two signers at a computer, with the QR code
    for token, (person, _) in zip(first_links[:2], signers[:2], strict=True):
        signer_page = browser.new_context(viewport=DESKTOP).new_page()
        signer_page.goto(f"{live_app.url}/sign/{token}")
        signer_page.get_by_role("button", name="Signera med BankID").click()
        signer_page.locator("#qr").wait_for(state="visible")
        approve_signing(live_app, person)
        signer_page.get_by_text("Du har signerat").wait_for(timeout=20_000)
        signer_page.context.close()

    # the chair on a phone: "Öppna BankID" on the same device
    phone, launched = phone_page(browser)
    phone.goto(f"{live_app.url}/sign/{first_links[2]}")
    phone.get_by_role("button", name="Öppna BankID", exact=True).click()
    approve_signing(live_app, signers[2][0])
    phone.get_by_text("Du har signerat").wait_for(timeout=20_000)
    assert launched, "the phone flow did not open the BankID app"
    keep_screenshot(phone, "journey-3-chair-signed-phone")
    phone.context.close()

    # the round completes; its page offers the signed protocol
    wait_for_round(live_app, round_id, "completed")
    page.goto(f"{live_app.url}/rounds/{round_id}")
    check_page(page, "journey-4-round-completed")
    response = context.request.get(f"{live_app.url}/rounds/{round_id}/document")
    assert response.ok
    signed = response.body()
    assert signed.startswith(b"%PDF-")
    assert problems == []
    context.close()

    # the auditor, not signed in, verifies the protocol and a tampered copy
    auditor = browser.new_context(viewport=DESKTOP).new_page()
    auditor.goto(f"{live_app.url}/verify")
    for name, data, verdict in (
            ("signerat.pdf", signed, "Giltig: alla tre har signerat"),
            ("andrat.pdf", tamper(signed),
             "Ogiltig: dokumentet har ändrats efter underskrift")):
        auditor.get_by_label("Den signerade PDF-filen").last.set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": data})
        with auditor.expect_navigation():
            auditor.get_by_role("button", name="Kontrollera underskrifterna").last.click()
        auditor.get_by_role("heading", level=1, name=verdict).wait_for()
        for person, _ in signers:
            assert auditor.get_by_text(person.name).first.is_visible()
        check_page(auditor, f"journey-5-verified-{name}")
    auditor.context.close()
