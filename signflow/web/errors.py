"""Errors as JSON (API) or plain pages, with the status each error class means."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, InterfaceError
from werkzeug.exceptions import HTTPException

from signflow.errors import (
    Busy,
    ConfigError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    SignflowError,
    Unauthorized,
    UnsupportedDocument,
)

log = logging.getLogger(__name__)

STATUS = [
    (UnsupportedDocument, 422),
    (InvalidInput, 400),
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (IllegalTransition, 409),
    (ProviderError, 502),
    (RateLimited, 429),
    (Busy, 503),
    (ConfigError, 500),
]
UNSUPPORTED_STATUS = {"not_pdf": 415, "too_large": 413}
#: Seconds a client is asked to wait when the database is away.
RETRY_AFTER = "5"
#: What a driver says when the database is not there (PostgreSQL via psycopg, SQLite).
OUTAGE_WORDS = (
    "connection refused", "could not connect", "connection failed", "server closed the connection",
    "terminating connection", "connection timed out", "connection is closed",
    "no connection to the server", "connection reset", "the database system is",
    "unable to open database file", "consuming input failed", "ssl syscall error",
)


def status_of(err: SignflowError) -> int:
    if isinstance(err, UnsupportedDocument) and err.code in UNSUPPORTED_STATUS:
        return UNSUPPORTED_STATUS[err.code]
    if isinstance(err, ProviderError) and err.code == "bankid_unreachable":
        return 503
    for cls, status in STATUS:
        if isinstance(err, cls):
            return status
    return 400


def retry_after(err: SignflowError) -> dict[str, str]:
    """The ``Retry-After`` header an error asks for (a busy service, a rate limit), if any."""
    seconds = err.fields.get("retry_after")
    return {"Retry-After": str(seconds)} if isinstance(seconds, int) else {}


def error_body(code: str, message: str, **extra: object):
    body: dict[str, object] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return jsonify(error=body)


def wants_page() -> bool:
    """A person's browser asked (not the API, not the pages' own JSON calls)."""
    if request.path.startswith("/api/") or request.is_json:
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def error_page(status: int, message: str = ""):
    return render_template("error.html", status=status, message=message), status


def is_database_outage(err: DBAPIError) -> bool:
    """The database is unreachable (not a bad query): worth a 503, not a traceback."""
    if err.connection_invalidated or isinstance(err, InterfaceError):
        return True
    reason = str(err.orig).lower()
    return any(words in reason for words in OUTAGE_WORDS)


def _unavailable(err: DBAPIError):
    first = (str(err.orig).strip().splitlines() or [""])[0]
    # the request's own log line says it (signflow.logs), so an outage costs one line a request
    g.log_problem = f"database unavailable: {first[:200]}"
    if wants_page():
        body, status = error_page(503)
    else:
        body, status = error_body(
            "unavailable", "the service is briefly unavailable; try again shortly"), 503
    return body, status, {"Retry-After": RETRY_AFTER}


def register(app: Flask) -> None:
    @app.errorhandler(DBAPIError)
    def _database_error(err: DBAPIError):
        if is_database_outage(err):
            return _unavailable(err)
        return _unexpected(err)

    @app.errorhandler(SignflowError)
    def _signflow_error(err: SignflowError):
        status = status_of(err)
        if status >= 500 and not isinstance(err, Busy):  # a full service is no fault
            log.error("%s: %s", type(err).__name__, err.message)
        if wants_page():
            return (*error_page(status), retry_after(err))
        extra = {k: v for k, v in err.fields.items() if isinstance(v, str | int | list)}
        return error_body(err.code, err.message, **extra), status, retry_after(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        if not wants_page() and (request.path.startswith(("/api/", "/sign/"))
                                 or request.is_json or not request.accept_mimetypes.accept_html):
            if err.code == 413:  # the whole request over MAX_CONTENT_LENGTH: as an upload's
                limit = current_app.config.get("MAX_CONTENT_LENGTH")
                return error_body("too_large", "the request is too large",
                                  **({"max_bytes": limit} if limit else {})), 413
            resp = error_body(code, err.description or err.name)
            return resp, err.code or 400
        if err.code and err.code >= 400:
            return error_page(err.code)
        return err

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        if wants_page():
            return error_page(500)
        return error_body("internal_error", "something went wrong on our side"), 500
