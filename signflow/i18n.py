"""Languages of the pages: Swedish by default, English on request.

Message ids are English; the Swedish catalogue lives in
``signflow/translations/sv/LC_MESSAGES/*.po``, one file per part of the
service so that parts can be edited apart.  ``python -m signflow.i18n``
merges them into the ``messages.mo`` that Flask-Babel reads; a test keeps
the committed ``.mo`` in step with the ``.po`` files and every string the
templates and views ask for translated.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
TRANSLATIONS = Path(__file__).parent / "translations"


def catalogue_sources(language: str) -> list[Path]:
    return sorted((TRANSLATIONS / language / "LC_MESSAGES").glob("*.po"))


def merged_catalogue(language: str):
    """All of *language*'s ``.po`` files as one Babel catalogue."""
    from babel.messages.catalog import Catalog, Message
    from babel.messages.pofile import read_po

    merged = Catalog(locale=language, domain="messages", fuzzy=False)
    for path in catalogue_sources(language):
        with path.open("rb") as fh:
            part = read_po(fh, locale=language)
        for message in part:
            if message.id and message.string and not message.fuzzy:
                merged[message.id] = Message(message.id, message.string)
    return merged


def compiled(language: str) -> bytes:
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, merged_catalogue(language))
    return buf.getvalue()


def mo_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"


def compile_all() -> list[Path]:
    written = []
    for language in LANGUAGES:
        if catalogue_sources(language):
            path = mo_path(language)
            path.write_bytes(compiled(language))
            written.append(path)
    return written


if __name__ == "__main__":  # python -m signflow.i18n
    for path in compile_all():
        print(f"wrote {path}", file=sys.stderr)
