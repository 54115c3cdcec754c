"""Bounds on the public verification (``POST /api/v1/verify``, the ``/verify`` page).

Anyone may ask this service to verify a PDF, so no caller may take the service
from everyone else, nor from the health checks.  Each bound refuses at once,
with a reason, before the expensive part:

* size: the upload is read no further than ``SIGNFLOW_VERIFY_MAX_BYTES`` (413);
* cost: pages × signatures, read in the sandbox (:mod:`signflow.pdf.cost`), over
  ``SIGNFLOW_VERIFY_MAX_COST`` (422, with the numbers and the limit);
* rate: ``SIGNFLOW_VERIFY_RATE`` per client address (Flask-Limiter; counted in
  Redis when there is one, so that every process counts together) (429);
* concurrency: one process runs at most ``SIGNFLOW_VERIFY_CONCURRENCY``
  verifications at once, and large files (over :data:`LIGHT_COST` or
  :data:`LIGHT_BYTES`) may take all of those slots but one, so an ordinary
  protocol is never kept waiting behind a flood of large ones (503).

429 and 503 carry ``Retry-After``.  Nothing waits for a slot: a waiting request
would hold a server thread that the health checks and everyone else need, and
could end in the server's timeout instead of an answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import MemoryStorage
from werkzeug.exceptions import HTTPException

from signflow.config import Settings
from signflow.errors import Busy, ConfigError, RateLimited
from signflow.pdf import halves
from signflow.pdf.cost import estimate_isolated

#: The views that verify an upload; they share one rate limit per client.
VERIFY_ENDPOINTS = ("api.verify", "pages.verify")
#: Pages × signatures of a file that verifies in a fraction of a second (a
#: 50-page protocol with eight signatures): such files have a slot of their own,
#: if they are no larger than :data:`LIGHT_BYTES` either (what the estimate does not
#: count, objects and revisions, grows with the bytes).
LIGHT_COST = 400
LIGHT_BYTES = 5 * 1024 * 1024
#: Seconds a caller is asked to wait when every slot is taken.
BUSY_RETRY_SECONDS = 5
#: Seconds asked for when the rate limit's storage cannot say when its window ends.
RATE_RETRY_SECONDS = 60
#: Seconds the rate limit's Redis gets to connect and to answer.
REDIS_TIMEOUTS: dict[str, str | int] = {"socket_connect_timeout": 1, "socket_timeout": 1}
#: Counting in this process (:class:`ThreadSafeMemory`).
MEMORY = "signflow+memory://"


class Slots:
    """One process's verification slots: *total* at once, of which heavy work
    may take all but one (all, when there is only one)."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ConfigError(f"SIGNFLOW_VERIFY_CONCURRENCY must be 1 or more, not {total}")
        self.total = total
        self.heavy_total = max(1, total - 1)
        self.busy = 0
        self.heavy = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def taken(self, *, heavy: bool) -> Iterator[None]:
        """Hold a slot for the block; :class:`Busy` at once when there is none."""
        with self._lock:
            if self.busy >= self.total or (heavy and self.heavy >= self.heavy_total):
                raise Busy("the service is verifying as many files as it can at once; "
                           f"try again in {BUSY_RETRY_SECONDS} s",
                           retry_after=BUSY_RETRY_SECONDS)
            self.busy += 1
            self.heavy += heavy
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1
                self.heavy -= heavy


class ThreadSafeMemory(MemoryStorage):
    """``limits``' memory storage, whose expiry timer is (re)started under a lock.

    In ``limits`` 5.8 two threads counting at once may both start the same new
    timer thread: one fails with "threads can only be started once", or the second
    bootstrap prints a ``KeyError`` traceback from ``threading._limbo`` into the
    server's log (seen under the flood test; fixed upstream in limits PR #352).
    gunicorn's threaded workers count from several threads, so ours locks.
    """

    STORAGE_SCHEME = ["signflow+memory"]

    def __init__(self, uri: str | None = None, **options) -> None:
        self._timer_lock = threading.Lock()
        super().__init__(uri, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the private method
        with self._timer_lock:
            if not self.timer.is_alive():
                expire = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
                timer = threading.Timer(0.01, expire)
                timer.daemon = True
                timer.start()
                self.timer = timer


@dataclass(frozen=True)
class VerifyBounds:
    """What the verify views consult, kept in ``app.extensions``."""

    limiter: Limiter
    slots: Slots
    max_cost: int
    max_bytes: int


def init_app(app: Flask, settings: Settings) -> None:
    """Put the bounds on the verify views (registered already)."""
    try:
        parse_many(settings.verify_rate)
    except ValueError:
        raise ConfigError(f"SIGNFLOW_VERIFY_RATE must read like '30/minute', "
                          f"not {settings.verify_rate!r}") from None
    storage = _storage(settings)
    limiter = Limiter(
        get_remote_address,  # the client's address, as ProxyFix corrects it behind proxies
        storage_uri=storage, key_prefix="signflow-verify",
        # a Redis that does not answer costs a request a second at most, not a hang
        storage_options=REDIS_TIMEOUTS if storage != MEMORY else {},
        # a Redis outage must not turn verification into a 500: count in memory meanwhile
        swallow_errors=True, in_memory_fallback_enabled=True)
    limiter.init_app(app)
    if limiter._fallback_limiter is not None:  # built on a plain MemoryStorage
        limiter._fallback_storage = ThreadSafeMemory()
        strategy = type(limiter._fallback_limiter)
        limiter._fallback_limiter = strategy(limiter._fallback_storage)
    shared = limiter.shared_limit(settings.verify_rate, scope="verify", methods=["POST"])
    for endpoint in VERIFY_ENDPOINTS:  # the wrapper counts, before the upload is read
        app.view_functions[endpoint] = shared(  # type: ignore[assignment]
            app.view_functions[endpoint])
    app.extensions["signflow.verify"] = VerifyBounds(
        limiter, Slots(settings.verify_concurrency), settings.verify_max_cost,
        settings.verify_max_bytes)
    app.register_error_handler(RateLimitExceeded, _rate_limited)


def bounds() -> VerifyBounds:
    """This app's bounds, as :func:`init_app` set them."""
    return current_app.extensions["signflow.verify"]


@contextlib.contextmanager
def verification_slot(data: bytes) -> Iterator[int]:
    """Room to verify *data* now, or the refusal; yields how many processes the
    verification may use: two for a light file where the machine has the cores
    (its signatures judged half each, :mod:`signflow.pdf.halves`), else one.

    :raises UnsupportedDocument: ``too_costly`` over the cost limit, ``too_complex``
        when even the estimate is over the sandbox's limits.
    :raises Busy: every slot this file may use is taken.
    """
    cost = estimate_isolated(data)
    if cost is not None:
        cost.refuse_over(bounds().max_cost)
    # a file qpdf cannot read is refused by the verification in its own words, in the
    # sandbox; until then nothing says it is cheap
    heavy = cost is None or cost.units > LIGHT_COST or len(data) > LIGHT_BYTES
    with bounds().slots.taken(heavy=heavy):
        yield 1 if heavy else halves.workers()


def _storage(settings: Settings) -> str:
    """Redis when the service has one (every process counts together), else memory.

    Tests count in memory, per app, so that one test's requests do not limit the next.
    """
    if not settings.redis_url or settings.testing:
        return MEMORY
    url = settings.redis_url
    return "redis+" + url if url.startswith("unix://") else url  # how ``limits`` names a socket


def _rate_limited(exc: RateLimitExceeded):
    _discard_upload()
    seconds = _seconds_to_reset()
    err = RateLimited(f"too many verifications from this address ({exc.description}); "
                      f"try again in {seconds} s", retry_after=seconds)
    return current_app.handle_user_exception(err)  # the page's handler, or the JSON one


def _discard_upload() -> None:
    """Read the refused upload to its end, unparsed, and drop it.

    The refusal comes before the upload is read; a server that answers and leaves
    the rest unread closes a kept-alive connection under the client (gunicorn
    does), or resets it while the client still sends, and the client never sees
    the answer.  The body is bounded by ``MAX_CONTENT_LENGTH`` all the same.
    """
    try:
        while request.stream.read(1 << 20):
            pass
    except (HTTPException, OSError):  # too large to read at all, or the client went away
        pass


def _seconds_to_reset() -> int:
    try:
        limit = bounds().limiter.current_limit
        if limit is not None:
            return max(1, int(limit.reset_at - time.time()))
    except Exception:  # noqa: BLE001 - the storage went away meanwhile: a fair guess
        pass
    return RATE_RETRY_SECONDS
