"""Logging for the web app and the worker: one JSON object a line, with a request ID.

``wsgi:app`` and ``signflow worker`` log JSON unless ``SIGNFLOW_LOG_FORMAT=text``;
``signflow serve`` logs readable text unless ``SIGNFLOW_LOG_FORMAT=json``.  Every
line, in either format, has its signing-link tokens replaced (a token in a log
would let whoever reads the logs sign in the signer's place).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from signflow.config import Settings
from signflow.errors import ConfigError
from signflow.web.redact import redact_links

FORMATS = ("json", "text")
#: An ``X-Request-ID`` we take over from a proxy or client; anything else is replaced.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
HEADER = "X-Request-ID"
#: Libraries that talk too much at INFO.
QUIET = ("pyhanko", "pyhanko_certvalidator", "fontTools")

#: The request being served in this thread: (request id, method, path).
_request: ContextVar[tuple[str, str, str] | None] = ContextVar("signflow_request", default=None)


def current_request_id() -> str:
    """The request ID of the request (or the RQ job) being handled here; empty outside."""
    return _context()[0]


def _context() -> tuple[str, str, str]:
    here = _request.get()
    if here is not None:
        return here
    if "rq" in sys.modules:  # in a worker the job's id ties its lines together
        from rq import get_current_job

        job = get_current_job()
        if job is not None:
            return job.id, "", ""
    return "", "", ""


def refuse(message: str) -> None:
    """Say why a process will not start: a JSON line when JSON logging is set up
    (a log pipeline keeps it with the rest), else ``signflow: <message>``."""
    if any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers):
        logging.getLogger("signflow").critical(message)
    else:
        print(f"signflow: {message}", file=sys.stderr, flush=True)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO, UTC), level, logger, message, request_id,
    method, path, and ``exc`` with the traceback when there is one."""

    #: LogRecord attributes that ``extra=`` may add and that belong in the line.
    EXTRA = ("status", "duration_ms", "job")

    def format(self, record: logging.LogRecord) -> str:
        request_id, method, path = _context()
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_links(record.getMessage()),
        }
        if request_id:
            line["request_id"] = request_id
        if method:
            line["method"], line["path"] = method, redact_links(path)
        for name in self.EXTRA:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exc"] = redact_links(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The readable format of ``signflow serve``, tokens redacted all the same."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_links(super().format(record))


class _SignflowHandler(logging.StreamHandler):
    """Marks the handler :func:`configure` installed, so a second call replaces it."""


def configure(settings: Settings, *, default: str = "json") -> str:
    """Send every log line to stderr in ``SIGNFLOW_LOG_FORMAT`` (else *default*).

    JSON logs record INFO and above (one line per request, jobs' progress);
    text logs WARNING and above, as the development server always did.

    :returns: the format chosen.
    :raises ConfigError: an unknown ``SIGNFLOW_LOG_FORMAT``.
    """
    fmt = (settings.log_format or default).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"SIGNFLOW_LOG_FORMAT must be json or text, not {settings.log_format!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SignflowHandler | logging.StreamHandler)
                and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]:
        root.removeHandler(old)
    handler = _SignflowHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO if fmt == "json" else logging.WARNING)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return fmt


def gunicorn_logging(log_format: str | None = None) -> dict:
    """gunicorn's ``logconfig_dict`` (``gunicorn.conf.py``): its own lines (its
    start, workers booting, exiting, timing out, failing to boot) in the format
    signflow's lines have under gunicorn, JSON unless ``SIGNFLOW_LOG_FORMAT=text``.
    An unknown format gets JSON here; ``wsgi`` then stops with the message."""
    fmt = (log_format if log_format is not None
           else os.environ.get("SIGNFLOW_LOG_FORMAT", "")).lower()
    formatter = TextFormatter if fmt == "text" else JsonFormatter
    stderr = {"class": "logging.StreamHandler", "formatter": "signflow",
              "stream": "ext://sys.stderr"}
    own = {"level": "INFO", "handlers": ["stderr"], "propagate": False}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"signflow": {"()": f"{__name__}.{formatter.__name__}"}},
            "handlers": {"stderr": stderr},
            "root": {"level": "INFO", "handlers": ["stderr"]},
            "loggers": {"gunicorn.error": own, "gunicorn.access": own}}


def request_id_from(header: str | None) -> str:
    """The caller's request ID when it is sane, else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def init_app(app) -> None:
    """Give each request an ID (``X-Request-ID``, taken over when sane), echo it in
    the response, and log one line per request on ``signflow.request``: INFO, or
    WARNING with the problem an error handler left in ``g.log_problem``."""
    from flask import g, request

    log = logging.getLogger("signflow.request")

    @app.before_request
    def _start() -> None:
        g.request_id = request_id_from(request.headers.get(HEADER))
        g.request_started = time.perf_counter()
        g.request_log_token = _request.set((g.request_id, request.method, request.path))

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[HEADER] = request_id
            took = (time.perf_counter() - g.request_started) * 1000
            extra = {"status": response.status_code, "duration_ms": round(took, 1)}
            problem = g.get("log_problem")  # an error handler's one-line account
            if problem:
                log.warning("%s %s %s: %s", request.method, request.path,
                            response.status_code, problem, extra=extra)
            else:
                log.info("%s %s %s", request.method, request.path, response.status_code,
                         extra=extra)
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None = None) -> None:
        token = g.pop("request_log_token", None)
        if token is not None:
            try:
                _request.reset(token)
            except ValueError:  # torn down in another context: it ends with that context
                pass
