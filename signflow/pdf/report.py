"""A verification verdict in plain words: the one-page PDF for the archive
folder, and the words for ETSI indications that the command line and the
``/verify`` page use too."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pikepdf

from signflow.pdf.pages import A4, MARGIN, Text, add_text_page, font_data
from signflow.pdf.verify import (
    INDETERMINATE,
    TOTAL_FAILED,
    TOTAL_PASSED,
    SignatureReport,
    VerificationReport,
)
from signflow.pdf.verify_evidence import EvidenceReport

#: The main indications, as a word.
INDICATIONS = {
    "sv": {TOTAL_PASSED: "godkänd", TOTAL_FAILED: "underkänd", INDETERMINATE: "obestämd"},
    "en": {TOTAL_PASSED: "passed", TOTAL_FAILED: "failed", INDETERMINATE: "indeterminate"},
}
#: What an indication means when there is no sub-indication to say more.
MEANINGS = {
    "sv": {TOTAL_PASSED: "underskriften håller", TOTAL_FAILED: "underskriften håller inte",
           INDETERMINATE: "den kan varken bekräftas eller underkännas"},
    "en": {TOTAL_PASSED: "the signature holds", TOTAL_FAILED: "the signature does not hold",
           INDETERMINATE: "it can be neither confirmed nor refuted"},
}
#: The sub-indications signflow gives, in plain words; others show their name only.
SUB_INDICATIONS = {
    "sv": {
        "HASH_FAILURE": "det undertecknade innehållet har ändrats",
        "SIG_CRYPTO_FAILURE": "signaturvärdet stämmer inte",
        "FORMAT_FAILURE": "underskriften är felaktigt uppbyggd och kan inte kontrolleras",
        "REVOKED": "certifikatet är återkallat",
        "NOT_YET_VALID": "certifikatet gällde ännu inte",
        "NO_CERTIFICATE_CHAIN_FOUND": "certifikatet leder inte till något känt "
                                      "förtroendeankare (rotcertifikat)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "certifikatkedjan kan inte kontrolleras",
        "OUT_OF_BOUNDS_NO_POE": "certifikatet har gått ut, och inget visar att underskriften "
                                "gjordes medan det gällde",
        "REVOKED_NO_POE": "certifikatet är återkallat, och inget visar att underskriften "
                          "gjordes dessförinnan",
        "TRY_LATER": "spärrinformation saknas; försök igen senare",
    },
    "en": {
        "HASH_FAILURE": "the signed content has changed",
        "SIG_CRYPTO_FAILURE": "the signature value does not verify",
        "FORMAT_FAILURE": "the signature is malformed and cannot be checked",
        "REVOKED": "the certificate has been revoked",
        "NOT_YET_VALID": "the certificate was not yet valid",
        "NO_CERTIFICATE_CHAIN_FOUND": "the certificate does not chain to a known trust anchor "
                                      "(root certificate)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the certificate chain cannot be checked",
        "OUT_OF_BOUNDS_NO_POE": "the certificate has expired, and nothing shows the signature "
                                "was made while it was valid",
        "REVOKED_NO_POE": "the certificate has been revoked, and nothing shows the signature "
                          "was made before that",
        "TRY_LATER": "revocation information is missing; try again later",
    },
}
#: The verdict on the whole file; None: the file has no signatures.
HEADLINES = {
    "sv": {TOTAL_PASSED: "GILTIG: alla underskrifter håller",
           TOTAL_FAILED: "OGILTIG: minst en underskrift håller inte",
           INDETERMINATE: "KAN INTE AVGÖRAS: underskrifterna kan varken bekräftas eller "
                          "underkännas med de förtroendeankare som getts",
           None: "INGET ATT KONTROLLERA: filen saknar underskrifter"},
    "en": {TOTAL_PASSED: "PASSED: every signature holds",
           TOTAL_FAILED: "FAILED: at least one signature does not hold",
           INDETERMINATE: "INDETERMINATE: the signatures can be neither confirmed nor refuted "
                          "with the trust anchors given",
           None: "NOTHING TO VERIFY: the file has no signatures"},
}
#: Where the issuing service publishes its trust anchors (``{url}``).
PUBLISHED = {
    "sv": "Tjänsten som utfärdade certifikaten publicerar sina förtroendeankare på {url} "
          "(adressen står i certifikaten: kontrollera att det är den tjänst du väntar dig, och "
          "verifiera sedan igen med dem).",
    "en": "The service that issued the certificates publishes its trust anchors at {url} "
          "(the address is named in the certificates: check that it is the service you "
          "expect, then verify again trusting them).",
}
T = {
    "sv": {"title": "Verifieringsrapport", "file": "Fil (SHA-256)", "checked": "Kontrollerad",
           "intact": "oförändrad", "trusted": "betrodd", "changes": "ändringar efter",
           "yes": "ja", "no": "nej", "tx": "Transaktions-ID", "evidence": "Identitetsbevis",
           "verdict": "Bedömning", "certification": "certifiering", "approval": "underskrift",
           "timestamp": "tidsstämpel"},
    "en": {"title": "Verification report", "file": "File (SHA-256)", "checked": "Checked",
           "intact": "intact", "trusted": "trusted", "changes": "changes after",
           "yes": "yes", "no": "no", "tx": "Transaction ID", "evidence": "Identity evidence",
           "verdict": "Verdict", "certification": "certification", "approval": "approval",
           "timestamp": "timestamp"},
}
#: Room for a line between the margins, in points.
LINE_WIDTH = A4[0] - 2 * MARGIN


def _language(language: str) -> str:
    return language if language in T else "sv"


def describe(indication: str | None, sub_indication: str | None, language: str = "en") -> str:
    """One indication in plain words, its ETSI names first, e.g.
    ``INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND: indeterminate, the certificate …``."""
    lang = _language(language)
    if indication is None:
        return HEADLINES[lang][None]
    names = f"{indication} / {sub_indication}" if sub_indication else indication
    word = INDICATIONS[lang].get(indication, indication)
    detail = (SUB_INDICATIONS[lang].get(sub_indication, "") if sub_indication
              else MEANINGS[lang].get(indication, ""))
    return f"{names}: {word}, {detail}" if detail else f"{names}: {word}"


def headline(report: VerificationReport, language: str = "en") -> str:
    """The verdict on the whole file in a sentence, its ETSI names in brackets."""
    lang = _language(language)
    text = HEADLINES[lang].get(report.indication, str(report.indication))
    if report.indication is None:
        return text
    names = " / ".join(n for n in (report.indication, report.sub_indication) if n)
    return f"{text} ({names})"


EVIDENCE_WORDS = {
    "sv": {"for_this": "Identitetsbeviset gäller det här dokumentet",
           "for_other": "Identitetsbeviset gäller ett annat dokument",
           "sealed": "förseglat för revisorer, oförändrat",
           "sealed_broken": "förseglat, men inte det som underskriften omfattar",
           "opened": "öppnat med nyckel", "provider_ok": "{provider}s underskrift håller",
           "provider_bad": "{provider}s underskrift håller inte",
           "provider_unchecked": "{provider}s underskrift kunde inte kontrolleras här",
           "personal_number": "Identiteten kontrollerades mot inbjudan (personnummer)",
           "name": "Identiteten kontrollerades mot inbjudan (namn)",
           "none": "Identiteten kontrollerades inte mot inbjudan"},
    "en": {"for_this": "The identity evidence is for this document",
           "for_other": "The identity evidence is for another document",
           "sealed": "sealed for auditors, unchanged",
           "sealed_broken": "sealed, but not what the signature covers",
           "opened": "opened with a key", "provider_ok": "{provider}'s signature holds",
           "provider_bad": "{provider}'s signature does not hold",
           "provider_unchecked": "{provider}'s signature could not be checked here",
           "personal_number": "Identity checked against the invitation (personal number)",
           "name": "Identity checked against the invitation (name)",
           "none": "Identity not checked against the invitation "
                   "(identiteten kontrollerades inte mot inbjudan)"},
}


def evidence_words(e: EvidenceReport, language: str = "en") -> list[str]:
    """The identity evidence of a signature in plain words: document, seal, provider, binding."""
    w = EVIDENCE_WORDS[_language(language)]
    provider = e.provider or "BankID"
    first = [w["for_this"] if e.matches_document else w["for_other"]]
    if e.sealed:
        first.append(w["sealed"] if e.sealed_intact else w["sealed_broken"])
        if e.opened:
            first.append(w["opened"])
    if e.provider_signature_valid is not None or not e.sealed or e.opened:
        key = {True: "provider_ok", False: "provider_bad", None: "provider_unchecked"}
        first.append(w[key[e.provider_signature_valid]].format(provider=provider))
    lines = [", ".join(first) + "."]
    if e.identity_check in ("personal_number", "name", "none"):
        lines.append(w[e.identity_check] + ".")
    return lines


def anchors_urls(report: VerificationReport) -> list[str]:
    """Where the issuing services publish their trust anchors, once each."""
    return sorted({s.trust_anchors_url for s in report.signatures if s.trust_anchors_url})


def published(report: VerificationReport, language: str = "en") -> list[str]:
    """The sentences saying where to get the missing trust anchors (none if none are)."""
    return [PUBLISHED[_language(language)].format(url=url) for url in anchors_urls(report)]


def report_pdf(report: VerificationReport, language: str = "sv") -> bytes:
    """The verdict as a PDF (one page for a usual round), in Swedish or English."""
    pdf = pikepdf.new()
    y = 790.0
    items: list[Text] = []
    for text, size, bold in _lines(report, _language(language)):
        for line in fit(text, size, bold):
            if y < 60:
                if not line:
                    continue  # no page of its own for a gap
                add_text_page(pdf, items)
                items, y = [], 790.0
            items.append(Text(MARGIN, y, line, size, bold))
            y -= size * 1.45
    add_text_page(pdf, items)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def _lines(report: VerificationReport, lang: str) -> list[tuple[str, float, bool]]:
    t = T[lang]
    lines: list[tuple[str, float, bool]] = [
        (t["title"], 18, True),
        (f"{t['checked']}: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", 9, False),
        (f"{t['file']}: {report.sha256}", 9, False),
        ("", 6, False),
        (headline(report, lang), 14, True),
    ]
    if report.sub_indication:
        lines.append((describe(report.indication, report.sub_indication, lang), 10, False))
    lines.extend((p, 9, False) for p in published(report, lang))
    lines.append(("", 6, False))
    lines.extend((f"– {p}", 9, False) for p in report.problems)
    for s in report.signatures:
        lines.extend(_signature_lines(s, t, lang))
    return lines


def _signature_lines(s: SignatureReport, t: dict[str, str],
                     lang: str) -> list[tuple[str, float, bool]]:
    yn = {True: t["yes"], False: t["no"], None: "–"}
    when = s.timestamp_time or s.signing_time or "–"
    lines: list[tuple[str, float, bool]] = [
        (f"{s.field} ({t.get(s.kind, s.kind)}): {s.signer}", 10, True),
        (f"{t['verdict']}: {describe(s.indication, s.sub_indication, lang)}", 9, False),
        (" · ".join(filter(None, (
            when, f"{t['intact']}: {yn[s.intact]}", f"{t['trusted']}: {yn[s.trusted]}",
            f"{t['changes']}: {s.modification_level or '–'}", s.pades_level))), 8, False),
    ]
    if s.transaction_id:
        lines.append((f"{t['tx']}: {s.transaction_id}", 8, False))
    if s.evidence:
        lines.extend((words, 8, False) for words in evidence_words(s.evidence, lang))
    lines.extend((f"– {p}", 8, False) for p in s.problems)
    lines.append(("", 4, False))
    return lines


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of *text* in points in the report's font (cp1252, as the page encodes it)."""
    widths = font_data(bold).widths
    raw = text.encode("cp1252", errors="replace")
    return sum(widths[b - 32] for b in raw if b >= 32) * size / 1000


def fit(text: str, size: float, bold: bool = False, width: float = LINE_WIDTH) -> list[str]:
    """*text* as lines no wider than *width*: broken at spaces, and inside a word
    (a hash, an address) only when the word alone is too wide."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        for piece in _pieces(word, size, bold, width):
            candidate = f"{line} {piece}" if line else piece
            if line and text_width(candidate, size, bold) > width:
                lines.append(line)
                line = piece
            else:
                line = candidate
    return [*lines, line]


def _pieces(word: str, size: float, bold: bool, width: float) -> list[str]:
    pieces = [""]
    for char in word:
        if pieces[-1] and text_width(pieces[-1] + char, size, bold) > width:
            pieces.append("")
        pieces[-1] += char
    return pieces
