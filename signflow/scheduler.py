"""The scheduler: the domain's housekeeping (:func:`signflow.core.housekeeping.tick`)
every few seconds: stalled PDF work restarted, due rounds expired, the reminders
and notices due sent, old archive timestamps renewed hourly.

It runs as ``signflow scheduler`` (a process of its own; several may run, one
acts per tick) or, in the embedded mode (``make run``: no Redis, so no such
process), as a thread of the app (:func:`start`).  An outage only delays the
next tick: it is logged in one line, never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from signflow.core.housekeeping import tick
from signflow.db import session_scope

if TYPE_CHECKING:
    from signflow.runtime import Runtime

log = logging.getLogger("signflow.scheduler")

#: Seconds between ticks (``signflow scheduler --interval``).
INTERVAL = 15.0
#: Seconds between two looks for archives due for renewal.
RENEW_EVERY = 3600.0


def run(runtime: Runtime, stop: threading.Event, interval: float = INTERVAL, *,
        once: bool = False) -> None:
    """Tick every *interval* seconds until *stop* is set (after one, with *once*)."""
    renewed_at = float("-inf")
    while True:
        renew = time.monotonic() - renewed_at >= RENEW_EVERY
        try:
            with session_scope(runtime.sessions) as session:
                done = tick(session, runtime.services, renew=renew)
            if done.ran and renew:
                renewed_at = time.monotonic()
            if done.expired or done.resumed or done.reminded or done.renewing or done.notices:
                log.info("housekeeping: %d expired, %d resumed, %d reminded, %d notice(s) "
                         "published, %d queued for renewal", len(done.expired),
                         len(done.resumed), len(done.reminded), len(done.notices),
                         len(done.renewing))
        except Exception as exc:  # noqa: BLE001 - an outage only delays the next tick
            log.error("housekeeping: %s: %s", type(exc).__name__, exc)
        if once or stop.wait(interval):
            return


def start(runtime: Runtime, interval: float = INTERVAL) -> threading.Event | None:
    """In the embedded mode, tick in a daemon thread of this process; with Redis
    ``signflow scheduler`` does it, and under tests nothing ticks (they call
    :func:`~signflow.core.housekeeping.tick`).  Set the returned event to stop it."""
    if not runtime.settings.embedded:
        return None
    stop = threading.Event()
    threading.Thread(target=run, args=(runtime, stop, interval), name="signflow-scheduler",
                     daemon=True).start()
    return stop
