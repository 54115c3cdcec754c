"""Pictures of a document's pages, for reading it on a phone.

Only for documents the service prepared itself (already checked and
normalized at intake), so PDFium renders in-process.  Renders are kept in a
small in-memory cache keyed by the document's SHA-256, the page and the
width: the same protocol is read by every signer of its round.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable

#: The widths (CSS pixels × density) a page is drawn at; anything else is refused,
#: so that the cache stays small and nobody can ask for a 50 000 px render.
WIDTHS = (480, 800, 1200, 1800)
DEFAULT_WIDTH = 800
#: How many bytes of PNG the cache keeps before it forgets the oldest.
CACHE_BYTES = 64 * 1024 * 1024
#: At most this many pixels per render, whatever the page's shape: a page 100 pt
#: wide and 14 400 pt tall drawn 1800 px wide would otherwise be a 3.5 GB bitmap.
MAX_PIXELS = 8_000_000
#: Documents whose page sizes are remembered (a few numbers each).
SIZES_KEPT = 256


#: A document's bytes, or a function that fetches them from the blob store.
Document = bytes | Callable[[], bytes]


def _bytes(pdf: Document) -> bytes:
    return pdf if isinstance(pdf, bytes) else pdf()


class PageImages:
    """Page sizes and PNG renders of PDFs, cached by content hash."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._pngs: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._sizes: OrderedDict[str, list[tuple[float, float]]] = OrderedDict()
        self._size = 0

    def page_sizes(self, sha256: str, pdf: Document) -> list[tuple[float, float]]:
        """Width and height (PDF points) of each page, in order.  *pdf*: the bytes, or
        a function that fetches them (called only when the cache has no answer)."""
        with self._lock:
            if sha256 in self._sizes:
                return self._sizes[sha256]
        sizes = read_page_sizes(_bytes(pdf))
        with self._lock:
            self._sizes[sha256] = sizes
            while len(self._sizes) > SIZES_KEPT:
                self._sizes.popitem(last=False)
        return sizes

    def png(self, sha256: str, pdf: Document, page: int, width: int) -> bytes:
        """Page *page* (1-based) drawn *width* pixels wide; IndexError if there is none."""
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}")
        key = (sha256, page, width)
        with self._lock:
            if key in self._pngs:
                self._pngs.move_to_end(key)
                return self._pngs[key]
        data = render_png(_bytes(pdf), page, width)
        with self._lock:
            if key not in self._pngs:
                self._pngs[key] = data
                self._size += len(data)
            while self._size > self._limit and len(self._pngs) > 1:
                _, dropped = self._pngs.popitem(last=False)
                self._size -= len(dropped)
        return data


#: PDFium is not thread-safe: one render at a time in this process.
_PDFIUM = threading.Lock()


def read_page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    import pypdfium2 as pdfium

    with _PDFIUM:
        doc = pdfium.PdfDocument(pdf)
        try:
            return [(float(w), float(h)) for w, h in (doc[i].get_size() for i in range(len(doc)))]
        finally:
            doc.close()


def render_png(pdf: bytes, page: int, width: int) -> bytes:
    """Page *page* (1-based) of *pdf* as a PNG *width* pixels wide (narrower for a
    very tall page, see MAX_PIXELS); IndexError if there is no such page to draw."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        doc = pdfium.PdfDocument(pdf)
        try:
            if not 1 <= page <= len(doc):
                raise IndexError(f"no page {page}")
            p = doc[page - 1]
            w, h = p.get_width(), p.get_height()
            if w <= 0 or h <= 0:
                raise IndexError(f"page {page} has no area")
            # the asked width, unless the page is so tall that this would exceed
            # MAX_PIXELS: then narrower (the picture is a reading aid, the PDF is the record)
            scale = min(width / w, (MAX_PIXELS / (w * h)) ** 0.5)
            try:
                image = p.render(scale=scale, may_draw_forms=True).to_pil()
            except (pdfium.PdfiumError, MemoryError):
                raise IndexError(f"page {page} cannot be drawn") from None
            if image.width > width:  # PDFium rounds the pixel size up
                image = image.crop((0, 0, width, image.height))
        finally:
            doc.close()
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()
