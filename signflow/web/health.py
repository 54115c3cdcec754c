"""``/healthz`` (the process answers), ``/readyz`` (it can do its work) and
``/metrics`` (Prometheus), no token.

A load balancer or orchestrator restarts on ``/healthz`` and routes on
``/readyz``: the first touches nothing, so a database outage never gets a
healthy web process killed; the second names each part that is not ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from signflow.errors import NotFound
from signflow.runtime import Runtime
from signflow.web import runtime

bp = Blueprint("health", __name__)

#: Seconds a key or TSA check is trusted before it is made again.
CACHE_SECONDS = 30.0
#: Seconds the TSA and Redis get to answer.
TIMEOUT = 3.0

Check = dict[str, object]


@bp.get("/healthz")
def healthz():
    """Alive: answers at once, without the database."""
    return {"ok": True}


@bp.get("/readyz")
def readyz():
    """Ready: database, Redis and its queue, keys, TSA; 503 naming what is not."""
    rt = runtime()
    checks: dict[str, Check] = {
        "database": _guarded(lambda: _database(rt)),
        "queue": _guarded(lambda: _queue(rt)),
        # shown, never a reason to be unready (unknown too while the database is away)
        "outbox": {**_guarded(lambda: _outbox(rt)), "ok": True},
        "keys": _cached(("keys", str(rt.settings.keys_dir)), lambda: _keys(rt)),
        "tsa": _cached(("tsa", rt.settings.tsa_url), lambda: _tsa(rt)),
    }
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"ready": not failing, "failing": failing, "checks": checks}
    return jsonify(body), 503 if failing else 200


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text: rounds by status, queue depth, durations, provider errors.

    No token, as a scraper expects: keep it off the public proxy.
    """
    from signflow import metrics

    if not metrics.ENABLED:
        raise NotFound("metrics need prometheus-client")
    body, content_type = metrics.exposition(runtime())
    return Response(body, content_type=content_type)


def _guarded(check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said briefly
        return {"ok": False, "error": _brief(exc)}


def _brief(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}".rstrip(": ")


def _database(rt: Runtime) -> Check:
    with rt.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"ok": True}


def _queue(rt: Runtime) -> Check:
    """Redis answers, and how many jobs wait; in-process jobs have no queue to check."""
    if not rt.settings.redis_url:
        return {"ok": True, "mode": "in-process"}
    from redis import Redis
    from rq import Queue

    with Redis.from_url(rt.settings.redis_url, socket_timeout=TIMEOUT,
                        socket_connect_timeout=TIMEOUT) as conn:
        conn.ping()
        backlog = Queue(rt.settings.rq_queue, connection=conn).count
    return {"ok": True, "mode": "redis", "backlog": backlog}


def _outbox(rt: Runtime) -> Check:
    """What waits in the outbox, by kind (mail, job, webhook): informational, never
    failing, since this process serves requests all the same.  Alert on it instead
    (``signflow_outbox_oldest_seconds``): rows only age when no dispatcher runs, or
    SMTP, a receiver or Redis stays down."""
    from signflow.core.models import utcnow
    from signflow.core.outbox import waiting

    with rt.sessions() as session:
        return {"ok": True, "waiting": waiting(session, utcnow())}


def _keys(rt: Runtime) -> Check:
    """The service PKI in the keys dir still loads (a volume not mounted, a bad edit)."""
    from signflow.pdf.pki import load_pki

    load_pki(rt.settings.keys_dir)
    return {"ok": True}


def _tsa(rt: Runtime) -> Check:
    """The TSA answers HTTP at all: any status below 500 is an answer.

    A real time-stamp request would cost a token at a paid TSA on every probe.
    """
    url = rt.settings.tsa_url
    if not url:
        return {"ok": True, "mode": "built-in"}
    status = requests.get(url, timeout=TIMEOUT, allow_redirects=False).status_code
    if status >= 500:
        return {"ok": False, "error": f"the TSA answered HTTP {status}"}
    return {"ok": True}


_cache: dict[tuple[str, str], tuple[float, Check]] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple[str, str], check: Callable[[], Check]) -> Check:
    """*check*'s result, made at most every :data:`CACHE_SECONDS` per process."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    result = _guarded(check)
    with _cache_lock:
        _cache[key] = (now, result)
    return result


def forget_cached_checks() -> None:
    """Make the next ``/readyz`` check keys and TSA afresh (tests, after a repair)."""
    with _cache_lock:
        _cache.clear()
