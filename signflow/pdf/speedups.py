"""signflow's faster readings of a PDF, switched on together in each process that reads PDFs.

Each keeps pyHanko's result and errors and is held equal to pyHanko by its own
tests: :mod:`.fast_hex` reads signatures' hex ``/Contents`` in one piece,
:mod:`.fast_paths` maps a revision's object paths for the difference analysis,
:mod:`.fast_names` prepares each certificate name once for comparisons.
Called by ``build_runtime``, the isolation zygote and ``signflow verify``, not
at import (nothing happens at import time).
"""

from __future__ import annotations


def install() -> None:
    """Switch every fast path on in this process (idempotent)."""
    from signflow.pdf import fast_hex, fast_names, fast_paths

    fast_hex.install()
    fast_paths.install()
    fast_names.install()
