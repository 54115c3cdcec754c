"""A round's Händelselogg as a PDF: the round, its chain's head, then every event.

In steps, each with its own result: the trail in words
(:func:`~signflow.pdf.event_words.event_log` → :class:`EventLog`), the words
fitted into rows inside the margins, a block per event (:func:`blocks`), the
blocks placed on as many A4 pages as they need, an event never split when it
fits on a page (:func:`paginate`), and the pages written with a footer
(:func:`event_log_pdf`).  Sealing is the service's
(:meth:`~signflow.core.ports.PdfService.seal_report`), as for the verification
report.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pikepdf

from signflow.pdf.event_words import EventLog, LoggedEvent
from signflow.pdf.pages import MARGIN, Text, add_text_page
from signflow.pdf.report import LINE_WIDTH, fit

__all__ = ["EventLog", "blocks", "event_log_pdf", "paginate"]

#: Where the first row's baseline sits, and below which no row goes.
TOP, BOTTOM = 790.0, 60.0
#: The footer's baseline (page number and round id).
FOOTER_Y = 36.0
#: The event's text starts this far right of the margin; its number stands in the gap.
INDENT = 30.0
LEADING = 1.45


@dataclass(frozen=True)
class Row:
    """One line of text, already fitted to its width."""

    text: str
    size: float
    bold: bool = False
    #: Points right of the margin.
    indent: float = 0.0
    #: Set at the margin on the same baseline (an event's number).
    number: str = ""

    @property
    def height(self) -> float:
        return self.size * LEADING


#: Rows that belong on one page (a page break falls between blocks where it can).
Block = list[Row]


def event_log_pdf(log: EventLog) -> bytes:
    """*log* as an A4 PDF, unsealed: the caller seals it with the service's seal."""
    pdf = pikepdf.new()
    pages = paginate(blocks(log))
    for number, rows in enumerate(pages, start=1):
        page = log.labels["page"] % {"page": number, "pages": len(pages)}
        footer = Text(MARGIN, FOOTER_Y, f"{log.title} · {log.round_id} · {page}", 7)
        add_text_page(pdf, [*rows, footer])
    pdf.docinfo[pikepdf.Name.Title] = f"{log.title}: {log.round_title}"
    pdf.docinfo[pikepdf.Name.Producer] = "signflow"
    pdf.Root.Lang = pikepdf.String(log.language)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def blocks(log: EventLog) -> list[Block]:
    """The heading (the round, its chain), then one block per event."""
    return [_heading(log), *(_event(e, log.labels) for e in log.events)]


def paginate(chunks: Sequence[Block]) -> list[list[Text]]:
    """Rows placed top to bottom, a block moved whole to the next page when it does
    not fit (and split only when it is taller than a page)."""
    pages: list[list[Text]] = [[]]
    y = TOP
    for block in chunks:
        if pages[-1] and y - sum(r.height for r in block) < BOTTOM:
            pages.append([])
            y = TOP
        for row in block:
            if y < BOTTOM:
                pages.append([])
                y = TOP
            if row.number:
                pages[-1].append(Text(MARGIN, y, row.number, row.size, row.bold))
            if row.text:
                pages[-1].append(Text(MARGIN + row.indent, y, row.text, row.size, row.bold))
            y -= row.height
    return pages


def _rows(text: str, size: float, bold: bool = False, indent: float = 0.0) -> list[Row]:
    return [Row(line, size, bold, indent) for line in fit(text, size, bold, LINE_WIDTH - indent)]


def _heading(log: EventLog) -> Block:
    rows = [*_rows(log.title, 18, True), *_rows(log.round_title, 13, True), Row("", 4)]
    for label, value in log.facts:
        rows.extend(_rows(f"{label}: {value}", 9))
    rows.append(Row("", 6))
    rows.extend(_rows(log.chain[0], 10, True))
    for problem in log.chain[1:]:
        rows.extend(_rows(f"– {problem}", 8))
    for label, value in log.head:
        rows.extend(_rows(f"{label}: {value}", 8))
    rows.append(Row("", 4))
    for note in log.notes:
        rows.extend(_rows(note, 8))
    rows.append(Row("", 10))
    return rows


def _event(event: LoggedEvent, labels: Mapping[str, str]) -> Block:
    first, *rest = _rows(event.text, 9, True, INDENT)
    rows = [Row(first.text, 9, True, INDENT, number=str(event.seq)), *rest]
    rows.extend(_rows(f"{event.stockholm} ({labels['zone']}) · {event.utc}", 8, indent=INDENT))
    rows.extend(_rows(f"{labels['by']}: {event.actor}", 8, indent=INDENT))
    for label, value in event.details:
        rows.extend(_rows(f"{label}: {value}", 8, indent=INDENT))
    rows.extend(_rows(f"{labels['hash']}: {event.hash}", 7, indent=INDENT))
    rows.append(Row("", 6))
    return rows
