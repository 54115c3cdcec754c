"""Signing links are secrets: request logs show ``/sign/…`` without the token.

Werkzeug's development server and gunicorn's access log write each request
line; a signer's link token in it would let anyone who reads the logs sign
(or decline) in the signer's place.
"""

from __future__ import annotations

import logging
import re

#: A link token in a path (``secrets.token_urlsafe(32)``: 43 characters).
TOKEN_IN_PATH = re.compile(r"/sign/[A-Za-z0-9_\-]{16,}")
#: The loggers that write request lines.
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access")


def redact_links(text: str) -> str:
    """*text* with every signing-link token replaced by ``[link]``."""
    return TOKEN_IN_PATH.sub("/sign/[link]", text) if "/sign/" in text else text


class RedactSigningLinks(logging.Filter):
    """Replaces link tokens in a record's message with ``/sign/[link]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/sign/" in message:
            record.msg, record.args = redact_links(message), ()
        return True


def install() -> None:
    """Put the filter on the request loggers (once, however many apps are made)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSigningLinks) for f in logger.filters):
            logger.addFilter(RedactSigningLinks())
