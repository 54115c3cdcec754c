"""Prometheus metrics (prometheus-client): what an operator graphs and alerts on.

- ``signflow_rounds{status}`` and ``signflow_queue_depth``: read at scrape time, so
  every process reports the same numbers;
- ``signflow_request_seconds{endpoint,method}``, ``signflow_verification_seconds``
  (the API's and the ``/verify`` page's verification), ``signflow_signing_seconds``
  (applying signatures to a PDF, a job), ``signflow_job_seconds{job,outcome}`` and
  ``signflow_job_wait_seconds{job}`` (enqueued → started, RQ only);
- ``signflow_identity_provider_errors_total{provider,code}``.

Counters and histograms live in the process that observed them: the web app
serves its own at ``/metrics``; the worker serves its own on
``SIGNFLOW_METRICS_PORT``.  Without prometheus-client installed every function
here does nothing and ``/metrics`` answers 404.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from signflow.adapters.providers import Providers
from signflow.errors import ProviderError

ENABLED = importlib.util.find_spec("prometheus_client") is not None
#: Flask endpoints that verify an uploaded PDF.
VERIFY_ENDPOINTS = frozenset({"api.verify", "pages.verify"})
#: The job that writes the signers' signatures into the PDF.
SIGNING_JOB = "apply_signatures"
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

_instruments: dict[str, Any] = {}
#: The first requests of a threaded worker arrive together: only one may register.
_instruments_lock = threading.Lock()


def _metric(name: str) -> Any:
    """The instrument *name*, made on first use (once per process)."""
    if not _instruments:
        make_instruments()
    return _instruments[name]


def make_instruments() -> None:
    """Make the instruments now (in a worker, at start rather than in its first job,
    prometheus_client's import included)."""
    if ENABLED:
        with _instruments_lock:
            _make_instruments()


def _make_instruments() -> None:
    if not _instruments:
        from prometheus_client import Counter, Histogram

        _instruments.update(
            request=Histogram("signflow_request_seconds", "Time to answer a request.",
                              ["endpoint", "method"]),
            verification=Histogram("signflow_verification_seconds",
                                   "Time to verify an uploaded PDF (API and /verify).",
                                   buckets=_SLOW),
            signing=Histogram("signflow_signing_seconds",
                              "Time to apply signatures to a round's PDF (job).",
                              buckets=_SLOW),
            job=Histogram("signflow_job_seconds", "Time a job ran.", ["job", "outcome"],
                          buckets=_SLOW),
            wait=Histogram("signflow_job_wait_seconds", "Time a job waited in the queue.",
                           ["job"], buckets=_SLOW),
            provider_errors=Counter("signflow_identity_provider_errors",
                                    "Errors from identity providers.", ["provider", "code"]),
        )


def observe_request(endpoint: str | None, method: str, seconds: float) -> None:
    if not ENABLED:
        return
    _metric("request").labels(endpoint or "unmatched", method).observe(seconds)
    if endpoint in VERIFY_ENDPOINTS and method == "POST":
        _metric("verification").observe(seconds)


def observe_job(job: str, outcome: str, seconds: float, waited: float | None = None) -> None:
    if not ENABLED:
        return
    _metric("job").labels(job, outcome).observe(seconds)
    if job == SIGNING_JOB and outcome == "ok":
        _metric("signing").observe(seconds)
    if waited is not None:
        _metric("wait").labels(job).observe(max(waited, 0.0))


def count_provider_error(provider: str, code: str) -> None:
    if ENABLED:
        _metric("provider_errors").labels(provider, code).inc()


def queue_wait_seconds() -> float | None:
    """How long the RQ job being run here waited after it was enqueued; None outside RQ."""
    from rq import get_current_job

    job = get_current_job()
    if job is None or job.enqueued_at is None:
        return None
    enqueued = job.enqueued_at
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=UTC)
    return (datetime.now(UTC) - enqueued).total_seconds()


# --- identity provider errors -------------------------------------------------------

class CountingProviders(Providers):
    """:class:`Providers` whose providers count the :class:`ProviderError`\\ s they raise."""

    def __getitem__(self, name: str):
        return _CountingProvider(name, super().__getitem__(name))


class _CountingProvider:
    """A provider as it is, except that each error it raises is counted first."""

    def __init__(self, name: str, provider: object) -> None:
        self._name, self._provider = name, provider

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._provider, attr)
        if not callable(value):
            return value

        @functools.wraps(value)
        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except ProviderError as err:
                count_provider_error(self._name, err.code)
                raise

        return counted


# --- state read at scrape time ------------------------------------------------------

def exposition(runtime) -> tuple[bytes, str]:
    """This process's metrics and the ones read now (rounds, queue), as Prometheus text."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _metric("request")  # the instruments exist (at zero) before the first observation
    now = CollectorRegistry()
    now.register(_StateCollector(runtime))
    return generate_latest(REGISTRY) + generate_latest(now), CONTENT_TYPE_LATEST


class _StateCollector:
    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from signflow.core.models import Round

        rounds = GaugeMetricFamily("signflow_rounds", "Rounds by status.", labels=["status"])
        with self.runtime.sessions() as session:
            rows = session.execute(select(Round.status, func.count()).group_by(Round.status))
            for status, count in rows:
                rounds.add_metric([getattr(status, "value", str(status))], count)
        yield rounds
        from signflow.core.models import utcnow
        from signflow.core.outbox import waiting

        with self.runtime.sessions() as session:
            outbox = waiting(session, utcnow())
        for name, key, what in (
                ("signflow_outbox_waiting", "count", "Outbox rows not yet delivered."),
                ("signflow_outbox_retrying", "retrying", "Undelivered rows that failed once."),
                ("signflow_outbox_oldest_seconds", "oldest_seconds",
                 "Age of the oldest undelivered row: alert when it grows (no dispatcher, or "
                 "SMTP, a receiver or Redis down).")):
            family = GaugeMetricFamily(name, what, labels=["kind"])
            for kind in ("mail", "job", "webhook"):
                family.add_metric([kind], outbox.get(kind, {}).get(key, 0))
            yield family
        settings = self.runtime.settings
        if settings.redis_url:
            from redis import Redis
            from rq import Queue

            with Redis.from_url(settings.redis_url, socket_timeout=3) as conn:
                depth = Queue(settings.rq_queue, connection=conn).count
            yield GaugeMetricFamily("signflow_queue_depth", "Jobs waiting in the RQ queue.",
                                    value=depth)


def init_app(app) -> None:
    """Time every request, by endpoint (verification separately)."""
    from flask import g, request

    @app.before_request
    def _start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.get("metrics_started")
        if started is not None:
            observe_request(request.endpoint, request.method, time.perf_counter() - started)
        return response


def serve_worker_metrics(port: int) -> None:
    """The worker's own ``/metrics`` on *port* (0: none)."""
    if port and ENABLED:
        from prometheus_client import start_http_server

        start_http_server(port)
