"""Thin blueprints, one per audience: api, sign (signers), pki (anyone), dev."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from signflow.errors import InvalidInput, UnsupportedDocument
from signflow.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["signflow"]


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def json_sent() -> object:
    """The request's JSON body, or None if there is none (or it is nested past the
    parser's depth, which Flask's ``silent`` lets through as a RecursionError: a 500).

    :raises InvalidInput: a string in it holds a lone UTF-16 surrogate (``"\\ud800"``),
        which JSON allows and no database or mail can store.
    """
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return None
    return whole_unicode(body)


def whole_unicode(value: Any) -> Any:
    """*value* (parsed JSON), unless a string in it is not Unicode text: a lone
    surrogate escape (``\\ud800``) parses, then fails at the database as a 500."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidInput("the JSON holds a lone surrogate (\\ud800-\\udfff), "
                                   "which is not text")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_date(field: str) -> date:
    """The JSON body's *field* as a calendar date written ``YYYY-MM-DD``; 400 otherwise."""
    body = json_sent()
    raw = body.get(field) if isinstance(body, dict) else None
    try:
        if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return date.fromisoformat(raw)  # (which takes week dates too: not here)
    except ValueError:
        pass
    raise InvalidInput(f"{field} must be a date: YYYY-MM-DD", field=field)


def read_upload(field: str = "document", *, max_bytes: int | None = None) -> bytes:
    """The uploaded file, read no further than *max_bytes* (default: the upload limit)."""
    file = request.files.get(field)
    if file is None:
        raise InvalidInput(f"multipart field '{field}' (the PDF) is required", field=field)
    limit = runtime().settings.max_upload_bytes if max_bytes is None else max_bytes
    data = file.stream.read(limit + 1)
    if len(data) > limit:
        raise UnsupportedDocument(f"the file is larger than {limit // (1024 * 1024)} MB",
                                  code="too_large", max_bytes=limit)
    if not data:
        raise UnsupportedDocument("the file is empty", code="not_pdf")
    return data
