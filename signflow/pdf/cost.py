"""What verifying a PDF will cost, read before the verification itself.

Difference analysis compares the document page by page for every signature, so
the time a verification takes grows with pages × signatures: here 0.8 s for a
1000-page file with two signatures, 3 s for 2000 pages with three, a minute for
2000 pages with thirty.  The public endpoints refuse a file whose estimate is
over their limit before they spend that time.

The estimate reads the page tree and the signature fields with qpdf (no content
stream is decompressed) in the sandbox's child, with tight limits: a hostile
file costs at most a few seconds of one child and ends in a refusal.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pikepdf
from pikepdf import Name

from signflow.errors import UnsupportedDocument

#: Form fields looked at before the file counts as hostile (an honest protocol has tens).
MAX_FIELDS = 100_000


@dataclass(frozen=True)
class Cost:
    """The size of a verification, as read from the file."""

    #: Pages in the document's page tree.
    pages: int
    #: Signature fields holding a signature or document timestamp: what the
    #: verification judges, one difference analysis each.
    signatures: int

    @property
    def units(self) -> int:
        """The estimate: pages × signatures."""
        return self.pages * self.signatures

    def refuse_over(self, limit: int) -> None:
        """Raise :class:`UnsupportedDocument` (``too_costly``) if the estimate exceeds *limit*."""
        if self.units <= limit:
            return
        raise UnsupportedDocument(
            f"the PDF has {self.pages} pages and {self.signatures} signatures: "
            f"{self.units} pages × signatures, more than the {limit} this service "
            "verifies in one file", code="too_costly",
            pages=self.pages, signatures=self.signatures, cost=self.units, limit=limit)


def estimate(data: bytes) -> Cost | None:
    """Pages and signatures of *data*; None when qpdf cannot read it (the
    verification then refuses it in its own words)."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except (pikepdf.PdfError, ValueError, RecursionError):  # PasswordError is a PdfError
        return None
    with pdf:
        try:
            return Cost(pages=len(pdf.pages), signatures=_signatures(pdf))
        except (pikepdf.PdfError, ValueError, RecursionError):
            return None


def estimate_isolated(data: bytes) -> Cost | None:
    """:func:`estimate` in the sandbox's child (:data:`signflow.pdf.isolate.DEFAULT_LIMITS`).

    :raises UnsupportedDocument: ``too_complex`` when even that is over the limits.
    """
    from signflow.pdf import isolate

    cost = isolate.run("estimate", data)
    assert cost is None or isinstance(cost, Cost)
    return cost


def _signatures(pdf: pikepdf.Pdf) -> int:
    """Signature fields with a value, walked as pyHanko walks them (``/FT`` is inherited)."""
    form = pdf.Root.get(Name.AcroForm)
    fields = form.get(Name.Fields) if isinstance(form, pikepdf.Dictionary) else None
    if not isinstance(fields, pikepdf.Array):
        return 0
    stack: list[tuple[pikepdf.Object, pikepdf.Object | None]] = [(f, None) for f in fields]
    seen: set[tuple[int, int]] = set()
    count = looked_at = 0
    while stack:
        field, inherited = stack.pop()
        if not isinstance(field, pikepdf.Dictionary):
            continue
        if field.is_indirect:
            if field.objgen in seen:
                continue
            seen.add(field.objgen)
        looked_at += 1
        if looked_at > MAX_FIELDS:
            raise UnsupportedDocument("the PDF has too many form fields to check",
                                      code="too_complex")
        kind = field.get(Name.FT, inherited)
        if kind == Name.Sig and isinstance(field.get(Name.V), pikepdf.Dictionary):
            count += 1
        kids = field.get(Name.Kids)
        if isinstance(kids, pikepdf.Array):
            stack.extend((kid, kind) for kid in kids)
    return count
