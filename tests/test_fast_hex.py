"""The fast reader of hex strings gives pyHanko's own result, position and errors."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.misc import PdfStreamError

from signflow.pdf import fast_hex


def both(raw: bytes):
    """(value or error type, position after) from pyHanko's reader and from ours."""
    out = []
    for reader in (fast_hex._original, fast_hex._read_hex_string):
        stream = io.BytesIO(raw)
        try:
            value = reader(stream)
            out.append((type(value), bytes(value.original_bytes)
                        if hasattr(value, "original_bytes") else bytes(value), stream.tell()))
        except PdfStreamError:
            out.append((PdfStreamError, None, None))
    return out


@pytest.mark.parametrize("raw", [
    b"<48656c6c6f> rest",
    b"<>",
    b"<4>",                                  # odd: a 0 is added
    b"<48 65\n6c\r\n6c\t6f\x0c\x00> x",      # whitespace anywhere
    b"<FEFF00480069>",                       # UTF-16 text
    b"<48656c %a comment\n6c6f>",           # a comment: pyHanko's reader decides
    b"<4865zz>",                             # not hex
    b"<48656c6c6f",                          # never ends
    b"<" + b"0a" * 100_000 + b">tail",       # longer than one chunk
])
def test_the_fast_path_reads_as_pyhanko_does(raw):
    theirs, ours = both(raw)
    assert ours == theirs


def test_every_process_that_reads_pdfs_installs_it(settings, monkeypatch):
    """Not at import (STYLE: nothing at import time): a runtime installs it, as the
    isolation zygote and ``signflow verify`` do."""
    from pyhanko.pdf_utils import generic

    from signflow.runtime import build_runtime

    monkeypatch.setattr(generic, "read_hex_string_from_stream", fast_hex._original)
    build_runtime(settings).close()
    assert generic.read_hex_string_from_stream is fast_hex._read_hex_string
