"""A fast path for pyHanko's reading of hex strings.

pyHanko reads a hex string (``<…>``) one byte at a time through Python, which is
fine for a document ID but not for a signature's ``/Contents``: ours are tens of
kilobytes of hex each (the CMS with its timestamp, certificates and sealed
evidence), read again by every validation, and that reading was about a quarter
of verifying the sample protocol.  :func:`install` puts a reader in front that
takes a clean body (hex digits and PDF whitespace up to ``>``) in one piece and
leaves everything else (comments, stray characters, a string that never ends)
to pyHanko's own reader from the same position, so the result and every error
are pyHanko's.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from pyhanko.pdf_utils import generic

#: PDF whitespace (pyHanko's ``PDF_WHITESPACE``).
_WHITESPACE = b" \n\r\t\f\x00"
_CLEAN = re.compile(rb"[0-9A-Fa-f \n\r\t\f\x00]*")
_CHUNK = 64 * 1024

_original = generic.read_hex_string_from_stream


def _read_hex_string(stream: Any):
    start = stream.tell()
    stream.read(1)  # the "<"
    parts: list[bytes] = []
    while True:
        chunk = stream.read(_CHUNK)
        end = chunk.find(b">")
        if end >= 0:
            parts.append(chunk[:end])
            break
        if not chunk:  # no end: pyHanko's reader says so in its words
            stream.seek(start)
            return _original(stream)
        parts.append(chunk)
    body = b"".join(parts)
    if not _CLEAN.fullmatch(body):  # a comment or a stray character: pyHanko decides
        stream.seek(start)
        return _original(stream)
    stream.seek(start + 1 + len(body) + 1)
    digits = body.translate(None, _WHITESPACE)
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def install() -> None:
    """Read hex strings through the fast path in this process (idempotent): called by
    ``build_runtime``, the isolation zygote and ``signflow verify``, not at import."""
    generic.read_hex_string_from_stream = _read_hex_string
