"""Small page images of an upload, for the new-round form.

The upload is untrusted, so it is opened with the same checks as intake
(:func:`~signflow.pdf.prepare.open_upload`: size, pages, hostile structure),
stripped of active content and written out again by pikepdf; pdfium renders
only that re-written copy.  All of it runs in a limited child process
(:mod:`signflow.pdf.isolate`), so a bomb ends in a refusal, not a dead worker.
"""

from __future__ import annotations

import io

import pikepdf

from signflow.pdf import isolate

#: Pages shown; a long protocol shows its first pages and says how many there are.
MAX_THUMBNAILS = 8
#: Width of a thumbnail in pixels (shown at about half that: sharp on a phone).
WIDTH = 240


def thumbnails(data: bytes, *, max_bytes: int, max_pages: int) -> tuple[int, list[bytes]]:
    """The upload's page count and PNG images of its first pages, rendered in isolation."""
    result = isolate.run("thumbnails", data, max_bytes=max_bytes, max_pages=max_pages)
    assert isinstance(result, tuple)
    return result


def warm() -> None:
    """Import pdfium and Pillow in the sandbox's zygote, not in every child (58
    modules, 35-60 ms a preview); this module itself stays light for the web."""
    import PIL.Image
    import pypdfium2  # noqa: F401

    PIL.Image.preinit()  # the image formats Pillow registers on first save


def render_thumbnails(data: bytes, *, max_bytes: int, max_pages: int) -> tuple[int, list[bytes]]:
    """In the child: check and re-write the upload, then render its first pages as PNG."""
    import pypdfium2

    from signflow.pdf.prepare import _strip_active_content, open_upload

    with open_upload(data, max_bytes=max_bytes, max_pages=max_pages) as pdf:
        _strip_active_content(pdf)
        count = len(pdf.pages)
        buf = io.BytesIO()
        pdf.save(buf, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    doc = pypdfium2.PdfDocument(buf.getvalue())
    images = []
    try:
        for index in range(min(count, MAX_THUMBNAILS)):
            page = doc[index]
            scale = WIDTH / max(page.get_width(), 1.0)
            bitmap = page.render(scale=min(scale, 2.0))
            out = io.BytesIO()
            bitmap.to_pil().save(out, format="PNG", optimize=True)
            images.append(out.getvalue())
            page.close()
    finally:
        doc.close()
    return count, images
