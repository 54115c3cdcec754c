"""The auditor's page /verify and the start page in a real browser (headless Chromium).

The signed file is the one ``signflow demo`` makes: a whole round with the
same keys as the live app, so the live app trusts it.
"""

from __future__ import annotations

import pytest

from tests.browser_kit import DESKTOP, NARROWEST, PHONE, check_page, horizontal_overflow
from tests.conftest import tamper

TEXT = {
    "sv": {"file": "Den signerade PDF-filen", "check": "Kontrollera underskrifterna",
           "valid": "Giltig: alla tre har signerat",
           "invalid": "Ogiltig: dokumentet har ändrats efter underskrift",
           "pdf": "Ladda ned som PDF", "json": "Ladda ned som JSON",
           "not_pdf": "Filen är ingen PDF.", "details": "Tekniska detaljer",
           "role": "Ordförande", "login": "Logga in"},
    "en": {"file": "The signed PDF file", "check": "Check the signatures",
           "valid": "Valid: all three have signed",
           "invalid": "Not valid: the document has been changed after it was signed",
           "pdf": "Download as PDF", "json": "Download as JSON",
           "not_pdf": "The file is not a PDF.", "details": "Technical details",
           "role": "Chair", "login": "Log in"},
}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def new_page(browser, device: str):
    page = browser.new_context(viewport=SIZES[device], accept_downloads=True).new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text else None)
    return page, problems


def upload(page, words: dict, name: str, data: bytes) -> None:
    """Choose *data* in the labelled file input and send the form with the keyboard."""
    page.get_by_label(words["file"]).last.set_input_files(
        {"name": name, "mimeType": "application/pdf", "buffer": data})
    page.get_by_role("button", name=words["check"]).last.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_verify_page_gives_the_verdict_on_a_signed_and_a_tampered_copy(
        browser, live_app, demo_run, device, language, tmp_path):
    words = TEXT[language]
    page, problems = new_page(browser, device)
    page.goto(f"{live_app.url}/verify?lang={language}&document=9cf54af4000e4ae9a3665365")
    assert page.locator("html").get_attribute("lang") == language
    check_page(page, f"verify-form-{device}-{language}")

    upload(page, words, "protokoll.pdf", demo_run.pdf)
    page.get_by_role("heading", level=1, name=words["valid"]).wait_for()
    assert page.get_by_text(f"– {words['role']}").first.is_visible()
    check_page(page, f"verify-valid-{device}-{language}")
    page.get_by_text(words["details"]).first.click()  # open one <details>
    check_page(page, f"verify-valid-details-{device}-{language}")

    with page.expect_download() as pdf:
        page.get_by_role("button", name=words["pdf"]).click()
    assert pdf.value.suggested_filename.endswith(".pdf")
    assert pdf.value.path().read_bytes().startswith(b"%PDF-")
    with page.expect_download() as js:
        page.get_by_role("button", name=words["json"]).click()
    assert js.value.suggested_filename.endswith(".json")

    upload(page, words, "andrad.pdf", tamper(demo_run.pdf))
    page.get_by_role("heading", level=1, name=words["invalid"]).wait_for()
    check_page(page, f"verify-tampered-{device}-{language}")

    upload(page, words, "not.pdf", b"just text")
    page.get_by_role("alert").filter(has_text=words["not_pdf"]).wait_for()
    check_page(page, f"verify-not-pdf-{device}-{language}")
    assert problems == []


def test_a_dropped_file_is_checked_at_the_narrowest_width(browser, live_app, demo_run):
    page = browser.new_context(viewport=NARROWEST).new_page()
    page.goto(f"{live_app.url}/verify?lang=sv")
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], "protokoll.pdf",
                              {type: "application/pdf"});
        const drop = new DataTransfer();
        drop.items.add(file);
        const zone = document.querySelector("[data-dropzone]");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: drop, bubbles: true,
                                                     cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: drop, bubbles: true,
                                                 cancelable: true}));
    }""", list(demo_run.pdf))
    assert page.locator("[data-drop-name]").inner_text() == "protokoll.pdf"
    with page.expect_navigation():
        page.get_by_role("button", name=TEXT["sv"]["check"]).click()
    page.get_by_role("heading", level=1, name=TEXT["sv"]["valid"]).wait_for()
    assert horizontal_overflow(page) <= 0
    check_page(page, "verify-valid-narrowest-sv")


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_start_page_passes_the_quality_bar(browser, live_app, device, language):
    page, problems = new_page(browser, device)
    page.goto(f"{live_app.url}/?lang={language}")
    assert page.locator("html").get_attribute("lang") == language
    assert page.get_by_role("link", name=TEXT[language]["login"]).get_attribute("href") \
        == "/login"
    check_page(page, f"start-{device}-{language}")
    assert problems == []
