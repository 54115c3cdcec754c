"""Words people read in mails and on the signature page (the language review)."""

from __future__ import annotations

from datetime import UTC, datetime

from signflow.core import messages
from signflow.core.people import in_a_sentence, method_in, role_label
from signflow.pdf.verdict_words import evidence_state
from signflow.pdf.verify_evidence import EvidenceReport


def test_a_deadline_in_a_mail_is_the_swedish_day_and_time():
    """23:30 UTC on the 17th is half past midnight on the 18th in Sweden: the mail
    said 'gäller till 2026-12-17' while the signing page said the 18th."""
    late = datetime(2026, 12, 17, 23, 30, tzinfo=UTC)
    assert messages.deadline(late, "sv") == "2026-12-18 kl. 00.30 (svensk tid)"
    assert messages.deadline(late, "en") == "2026-12-18, 00:30 (Swedish time)"
    summer = datetime(2027, 6, 30, 21, 59, tzinfo=UTC)  # UTC+2
    assert messages.deadline(summer, "sv") == "2027-06-30 kl. 23.59 (svensk tid)"


def test_roles_inside_a_sentence_are_not_capitalised_but_abbreviations_are_kept():
    assert in_a_sentence(role_label("justerare", "sv")) == "justerare"
    assert in_a_sentence(role_label("ordforande", "en")) == "chair"
    assert in_a_sentence("KS-ordförande") == "KS-ordförande"


def test_mobilt_bankid_is_mobile_bankid_in_english():
    assert method_in("Mobilt BankID", "en") == "Mobile BankID"
    assert method_in("Mobilt BankID", "sv") == "Mobilt BankID"
    assert method_in("Freja eID+", "en") == "Freja eID+"
    evidence = EvidenceReport(provider="Mobilt BankID", order_ref="x", completed_at=None,
                              document_sha256=None, matches_document=True,
                              provider_signature_valid=True, problems=(),
                              identity_check=None, sealed=False, sealed_intact=None,
                              opened=False)
    assert "the signature from Mobile BankID is valid" in evidence_state(evidence, "en")
    # no genitive to get wrong on names ending in s ("Freja eID+s")
    assert "underskriften från Mobilt BankID är giltig" in evidence_state(evidence, "sv")


def test_the_mismatch_mail_needs_no_genitive_of_the_name():
    """'legitimerade sig på Karin Laxs länk': a Swedish genitive on a name ending in
    s or x is wrong whichever way it is made, so the sentence has none."""
    mail = messages.identity_mismatch("sv", to="s@example.se", name="Karin Lax",
                                      role="Justerare", title="P", reported="Ola",
                                      by_personal_number=False)
    assert "legitimerade sig med länken till Karin Lax för" in mail.body
    assert "Laxs" not in mail.body


def test_the_invitation_gives_the_deadline_in_swedish_time_and_the_role_in_lower_case(
        client, auth, protocol_pdf, settings):
    from tests.conftest import create_round, signers_spec, wait_for_mail

    signers = signers_spec()
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201, resp.get_json()
    [mail] = wait_for_mail(settings, lambda m: m["to"] == signers[1]["email"])
    expires = datetime.fromisoformat(resp.get_json()["expires_at"].replace("Z", "+00:00"))
    assert f"gäller till {messages.deadline(expires, 'sv')}." in mail["body"]
    assert 'som justerare.' in mail["body"]


def test_the_seal_and_the_timestamp_are_not_called_signatures(completed_round, client):
    """The verify page said "Underskriften håller" under the document timestamp."""
    from tests.test_verify_page import post_verify, text_of

    _, pdf = completed_round
    sv = text_of(post_verify(client, pdf))
    assert "Förseglingen är giltig" in sv and "Tidsstämpeln är giltig" in sv
    assert "Underskriften är giltig" in sv and "håller" not in sv
    en = text_of(post_verify(client, pdf, lang="en"))
    assert "The seal is valid" in en and "The timestamp is valid" in en


def test_a_reminder_says_it_is_one_and_by_when():
    """'Påminnelse: Signera: Protokoll nr 4 2026', and a text that never said it was
    a reminder or how long the link works."""
    when = "2026-12-18 kl. 00.30 (svensk tid)"
    mail = messages.invitation("sv", to="a@example.se", name="Ann", org="Kommunen",
                               title="Protokoll nr 4 2026", role="justerare", message="",
                               link="https://x/sign/t", expires=when, reminder=True)
    assert mail.subject == f'Påminnelse: signera "Protokoll nr 4 2026" senast {when}'
    assert mail.body.startswith(f'Hej Ann,\n\nDu har ännu inte signerat "Protokoll nr 4 2026". '
                                f"Länken slutar gälla {when}.")
    first = messages.invitation("en", to="a@example.se", name="Ann", org="Kommunen",
                                title="P", role="chair", message="", link="https://x/sign/t",
                                expires="x")
    assert first.subject == "Please sign: P" and "not signed" not in first.body


def test_page_titles_say_what_the_page_is(client, runtime, auth, protocol_pdf):
    """Error pages were titled "404 – signflow"; an ended link only by the round's title."""
    import re

    from tests.conftest import create_round, links_in_outbox

    def title(resp) -> str:
        return re.search(r"<title>(.*?)</title>", resp.get_data(as_text=True), re.S).group(1)

    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert title(page) == "Sidan finns inte – signflow"
    body = create_round(client, auth, protocol_pdf).get_json()
    assert client.post(f"/api/v1/rounds/{body['id']}/cancel", headers=auth).status_code == 200
    link = links_in_outbox(runtime.settings.data_dir / "outbox")[body["signers"][0]["email"]]
    assert title(client.get(f"/sign/{link}")) == \
        "Signeringen har avbrutits – Protokoll nr 2 2026 – signflow"


def test_the_accessibility_statement_is_linked_from_every_page(settings, tmp_path):
    """DOS-lagen 12 §: a public service links its accessibility statement; the
    signing and verify pages are public services."""
    from signflow import create_app
    from signflow.config import value_problems
    from signflow.runtime import build_runtime

    url = "https://www.kommun.se/tillganglighet"
    with_link = settings.with_overrides(accessibility_url=url)
    rt = build_runtime(with_link)
    try:
        client = create_app(with_link, rt).test_client()
        page = client.get("/verify?lang=sv").get_data(as_text=True)
        assert f'<a href="{url}">Tillgänglighetsredogörelse</a>' in page
        missing = client.get("/sign/" + "x" * 43).get_data(as_text=True)
        assert f'href="{url}"' in missing
    finally:
        rt.close()
    assert any("SIGNFLOW_ACCESSIBILITY_URL must be" in p
               for p in value_problems(settings.with_overrides(accessibility_url="kommun.se")))
