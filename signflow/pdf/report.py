"""A one-page PDF of a verification verdict, for the archive folder."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pikepdf

from signflow.pdf.pages import MARGIN, Text, add_text_page, wrap
from signflow.pdf.verify import VerificationReport

T = {
    "sv": {"title": "Verifieringsrapport", "valid": "GILTIG: alla underskrifter håller",
           "invalid": "INTE GILTIG", "file": "Fil (SHA-256)", "checked": "Kontrollerad",
           "sig": "Underskrift", "intact": "oförändrad", "trusted": "betrodd",
           "changes": "ändringar efter", "yes": "ja", "no": "nej", "tx": "Transaktions-ID",
           "evidence": "BankID-bevis", "none": "Filen saknar underskrifter."},
    "en": {"title": "Verification report", "valid": "VALID: every signature holds",
           "invalid": "NOT VALID", "file": "File (SHA-256)", "checked": "Checked",
           "sig": "Signature", "intact": "intact", "trusted": "trusted",
           "changes": "changes after", "yes": "yes", "no": "no", "tx": "Transaction ID",
           "evidence": "BankID evidence", "none": "The file has no signatures."},
}


def report_pdf(report: VerificationReport, language: str = "sv") -> bytes:
    t = T.get(language, T["sv"])
    yn = {True: t["yes"], False: t["no"], None: "–"}
    lines: list[tuple[str, float, bool]] = [
        (t["title"], 18, True),
        (f"{t['checked']}: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", 9, False),
        (f"{t['file']}: {report.sha256}", 9, False),
        ("", 6, False),
        (t["valid"] if report.valid else t["invalid"], 14, True),
        ("", 6, False),
    ]
    for p in report.problems:
        lines.extend((w, 9, False) for w in wrap(f"– {p}", 100))
    for s in report.signatures:
        lines.append((f"{s.field} ({s.kind}): {s.signer}", 10, True))
        when = s.timestamp_time or s.signing_time or "–"
        lines.append((f"{when} · {t['intact']}: {yn[s.intact]} · {t['trusted']}: "
                      f"{yn[s.trusted]} · {t['changes']}: {s.modification_level or '–'} · "
                      f"{s.pades_level or ''}", 8, False))
        if s.transaction_id:
            lines.append((f"{t['tx']}: {s.transaction_id}", 8, False))
        if s.evidence:
            lines.append((f"{t['evidence']}: {yn[s.evidence.matches_document]} / "
                          f"{yn[s.evidence.provider_signature_valid]}", 8, False))
        for p in s.problems:
            lines.extend((w, 8, False) for w in wrap(f"– {p}", 110))
        lines.append(("", 4, False))
    if not report.signatures:
        lines.append((t["none"], 10, False))
    pdf = pikepdf.new()
    y = 790.0
    items: list[Text] = []
    for text, size, bold in lines:
        if y < 60:
            add_text_page(pdf, items)
            items, y = [], 790.0
        items.append(Text(MARGIN, y, text, size, bold))
        y -= size * 1.45
    add_text_page(pdf, items)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()
