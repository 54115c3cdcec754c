"""The notice of justering (*anslag/bevis om justering*) as a one-page A4 PDF.

In Swedish only: it is a notice on a Swedish municipality's board, whatever
language the round's e-mails were in.  The words are laid out in two
columns, label and value, each value fitted between its column and the right
margin (:func:`~signflow.pdf.report.fit`).  Unsealed here; the service's seal
certifies it (:meth:`~signflow.core.ports.PdfService.seal_report`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pikepdf

from signflow.pdf.pages import MARGIN, Text, add_text_page
from signflow.pdf.report import LINE_WIDTH, fit

#: Where the value column starts, right of the margin.
VALUE_AT = 190.0
TOP, FOOTER_Y, LEADING = 780.0, 36.0, 1.45


@dataclass(frozen=True)
class NoticeSheet:
    """What the notice says (dates as YYYY-MM-DD)."""

    #: The municipality or region (the organisation on the service).
    organisation: str
    #: The body whose meeting the protocol records (*organ*).
    body: str
    #: The protocol's title.
    title: str
    meeting_date: str
    justering_date: str
    posting_date: str
    takedown_date: str
    #: Where the protocol is kept (*förvaringsplats*); empty: not given.
    kept_at: str
    #: Who signs the notice: the service, by its seal.
    signed_by: str
    round_id: str
    #: False while the notice is prepared, not yet up: the sheet then says it is a
    #: draft (its lead would otherwise state as done what has not happened).
    published: bool = True


def _rows(sheet: NoticeSheet) -> list[tuple[str, str]]:
    return [
        ("Organ", sheet.body),
        ("Protokoll", sheet.title),
        ("Sammanträdesdatum", sheet.meeting_date),
        ("Datum för justering", sheet.justering_date),
        ("Datum då anslaget sätts upp", sheet.posting_date),
        ("Datum då anslaget tas ned", sheet.takedown_date),
        ("Förvaringsplats för protokollet", sheet.kept_at or "–"),
        ("Underskrift", f"{sheet.signed_by} (elektronisk försegling)"),
    ]


def notice_items(sheet: NoticeSheet) -> list[Text]:
    """The page's text, placed: heading, lead, the label/value rows, the note."""
    items = [Text(MARGIN, TOP, "Anslag/bevis om justering", 18, True)]
    y = TOP - 26
    if not sheet.published:
        for line in fit("UTKAST – inte uppsatt på anslagstavlan än. Datumen kan ändras fram "
                        "till dess.", 11, True):
            items.append(Text(MARGIN, y, line, 11, True))
            y -= 11 * LEADING
        y -= 4
    for line in fit(sheet.organisation, 11):
        items.append(Text(MARGIN, y, line, 11))
        y -= 11 * LEADING
    y -= 8
    for line in fit("Justeringen av protokollet har tillkännagetts genom anslag "
                    "(8 kap. 12 § kommunallagen).", 10):
        items.append(Text(MARGIN, y, line, 10))
        y -= 10 * LEADING
    y -= 12
    label_width, value_width = VALUE_AT - 10, LINE_WIDTH - VALUE_AT
    for label, value in _rows(sheet):
        labels, values = fit(label, 10, True, label_width), fit(value, 10, False, value_width)
        for n in range(max(len(labels), len(values))):
            if n < len(labels):
                items.append(Text(MARGIN, y, labels[n], 10, True))
            if n < len(values):
                items.append(Text(MARGIN + VALUE_AT, y, values[n], 10))
            y -= 10 * LEADING
        y -= 6
    y -= 10
    note = ("Den som vill överklaga beslut i protokollet genom laglighetsprövning ska göra "
            "det inom tre veckor från den dag då anslaget sattes upp (13 kap. 5 § "
            "kommunallagen). Anslaget sitter uppe till och med den sista dagen för "
            "överklagande.")
    for line in fit(note, 9):
        items.append(Text(MARGIN, y, line, 9))
        y -= 9 * LEADING
    items.append(Text(MARGIN, FOOTER_Y, f"Anslag · {sheet.round_id}", 7))
    return items


def notice_pdf(sheet: NoticeSheet) -> bytes:
    """The notice as a one-page A4 PDF, unsealed."""
    pdf = pikepdf.new()
    add_text_page(pdf, notice_items(sheet))
    pdf.docinfo[pikepdf.Name.Title] = f"Anslag: {sheet.title}"
    pdf.docinfo[pikepdf.Name.Producer] = "signflow"
    pdf.Root.Lang = pikepdf.String("sv")
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()
