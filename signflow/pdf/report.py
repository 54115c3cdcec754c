"""A verification verdict as a one-page PDF for the archive folder.

The words are :mod:`signflow.pdf.verdict_words`', shared with the ``/verify``
page and the command line (which imports them from here too).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pikepdf

from signflow.pdf.pages import (  # noqa: F401  (fit, text_width: used from here too)
    A4,
    MARGIN,
    Text,
    add_text_page,
    fit,
    font_data,
    text_width,
)
from signflow.pdf.verdict_words import (
    SignatureWords,
    describe,
    evidence_words,
    headline,
    language_of,
    plain_verdict,
    published,
    stockholm_time,
)
from signflow.pdf.verify import VerificationReport

__all__ = ["describe", "evidence_words", "headline", "published", "report_pdf"]

T = {
    "sv": {"title": "Verifieringsrapport", "file": "Fil (SHA-256)", "checked": "Kontrollerad",
           "tx": "Transaktions-ID", "role": "Roll", "when": "Tid", "evidence": "Identitetsbevis",
           "signatures": "Underskrifter", "seals": "Försegling och tidsstämpel",
           "problems": "Problem", "technical": "Tekniska detaljer", "todo": "Att göra",
           "zone": "svensk tid"},
    "en": {"title": "Verification report", "file": "File (SHA-256)", "checked": "Checked",
           "tx": "Transaction ID", "role": "Role", "when": "Time", "evidence": "Identity evidence",
           "signatures": "Signatures", "seals": "Seal and timestamp",
           "problems": "Problems", "technical": "Technical details", "todo": "What to do",
           "zone": "Swedish time"},
}
#: Room for a line between the margins, in points.
LINE_WIDTH = A4[0] - 2 * MARGIN


def report_pdf(report: VerificationReport, language: str = "sv") -> bytes:
    """The verdict as a PDF (one page for a usual round), in Swedish or English."""
    pdf = pikepdf.new()
    y = 790.0
    items: list[Text] = []
    for text, size, bold in _lines(report, language_of(language)):
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
    t, verdict = T[lang], plain_verdict(report, lang)
    checked = stockholm_time(datetime.now(UTC).isoformat())
    lines: list[tuple[str, float, bool]] = [
        (t["title"], 18, True),
        (f"{t['checked']}: {checked} ({t['zone']})", 9, False),
        (f"{t['file']}: {report.sha256}", 9, False),
        ("", 6, False),
        (verdict.headline, 14, True),
    ]
    if verdict.names:
        lines.append((verdict.names, 9, False))
    lines.extend((a, 9, False) for a in verdict.advice)
    lines.extend((f"– {p}", 9, False) for p in verdict.problems)
    lines.extend((sentence, 9, False) for sentence in verdict.trail)
    for heading, group in ((t["signatures"], verdict.approvals), (t["seals"], verdict.others)):
        if group:
            lines.extend([("", 6, False), (heading, 12, True)])
        for s in group:
            lines.extend(_signature_lines(s, t))
    return lines


def _signature_lines(s: SignatureWords, t: dict[str, str]) -> list[tuple[str, float, bool]]:
    who = f"{s.who} – {s.role}" if s.role else s.who
    lines: list[tuple[str, float, bool]] = [(who, 10, True), (s.verdict, 9, False)]
    if s.when:
        lines.append((f"{t['when']}: {stockholm_time(s.when)} ({t['zone']})", 8, False))
    if s.transaction_id:
        lines.append((f"{t['tx']}: {s.transaction_id}", 8, False))
    lines.extend((words, 8, False) for words in (s.identity, s.evidence) if words)
    lines.extend((f"– {p}", 8, False) for p in s.problems)
    lines.append((f"{t['technical']}: {s.field} · " + " · ".join(s.technical[:2]), 7, False))
    lines.append(("", 4, False))
    return lines


