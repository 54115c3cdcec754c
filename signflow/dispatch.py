"""Runs the outbox's dispatcher (:func:`signflow.core.outbox.deliver_due`) in a process.

Each runtime has one :class:`Dispatcher`.  After a commit that recorded work,
its :meth:`~Dispatcher.nudge` starts delivering those rows:

* jobs at once, in the committing thread: an enqueue is one bounded call;
* mail and webhooks, in a deployment with Redis (production), never in the
  web or worker process: they are left to ``signflow dispatcher`` (polling
  every second), so an SMTP server or a receiver that is slow or hangs holds
  neither a request nor the PDF work (:func:`leave_to_dispatcher`);
* mail and webhooks in the embedded server (no Redis): at once, in its
  delivery thread (:meth:`~Dispatcher.soon`), so that a slow SMTP server or
  receiver holds up no page a signer waits on;
* mail and webhooks everywhere else (the commands, the tests) in the
  committing thread, so the mail is written when the command or call returns.

A loop (:meth:`~Dispatcher.run`, in a thread or in ``signflow dispatcher``)
delivers what is due and again after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from signflow.core.outbox import NUDGE, deliver_due
from signflow.core.ports import Services

if TYPE_CHECKING:
    from signflow.runtime import Runtime

log = logging.getLogger(__name__)


class Dispatcher:
    """Delivers the outbox of one runtime.

    A nudge that arrives while this thread is already delivering (a job run in
    process whose commit records mail) is remembered and delivered when the
    outer delivery ends, never nested inside it.  On SQLite, which cannot
    claim rows (no ``SKIP LOCKED``), this process delivers one batch at a
    time; on PostgreSQL threads and processes deliver side by side.
    """

    def __init__(self, sessions: sessionmaker[Session], services: Services, *,
                 serial: bool) -> None:
        self.sessions = sessions
        self.services = services
        self._serial = threading.Lock() if serial else None
        self._local = threading.local()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._handoff: Callable[[Collection[str]], None] | None = None
        self._soon: queue.SimpleQueue[Collection[str]] = queue.SimpleQueue()

    def install(self) -> None:
        """Have every session of this runtime nudge this dispatcher after commit."""
        self.sessions.configure(info={NUDGE: self.nudge})

    def hand_off(self, handoff: Callable[[Collection[str]], None] | None) -> None:
        """From now on, pass just-committed mail and webhooks (by ref) to *handoff*
        instead of delivering them here (``None``: here again).  Whatever it does,
        the rows stay due until delivered, so a failing hand-off loses nothing."""
        self._handoff = handoff

    def nudge(self, refs: Collection[str], kind: str = "mail") -> None:
        """Start delivering the rows with these *refs* of *kind* (just committed)."""
        if self._handoff is not None and kind != "job":  # mail, webhooks: talk to others
            try:
                self._handoff(refs)
            except Exception as exc:  # noqa: BLE001 - the dispatcher loop delivers them
                log.warning("outbox: %d message(s) left for the dispatcher: %s: %s",
                            len(refs), type(exc).__name__, exc)
            return
        later: list[str] | None = getattr(self._local, "later", None)
        if later is not None:  # inside a delivery of this thread: after it, not nested
            later.extend(refs)
            return
        self._deliver(refs)

    def deliver_due(self) -> int:
        """Deliver everything due; how many rows were delivered."""
        return self._deliver(None)

    def _deliver(self, only: Collection[str] | None) -> int:
        with self._serial or contextlib.nullcontext():
            self._local.later = []
            try:
                done = deliver_due(self.sessions, self.services, only=only)
                while self._local.later:
                    later, self._local.later = self._local.later, []
                    done += deliver_due(self.sessions, self.services, only=later)
                return done
            finally:
                self._local.later = None

    def soon(self, refs: Collection[str]) -> None:
        """A hand-off (:meth:`hand_off`) to the thread :meth:`start` runs: it delivers
        *refs* at once, while the committing request goes on."""
        self._soon.put(refs)

    def run(self, stop: threading.Event, interval: float) -> None:
        """Deliver what is due every *interval* seconds, and what :meth:`soon` is
        given at once, until *stop* is set.

        A failing database only delays the next round: logged, never raised.
        """
        while True:
            try:
                refs: Collection[str] | None = self._soon.get(timeout=interval)
            except queue.Empty:
                refs = None
            if stop.is_set() and not refs:  # (what was handed over before is sent first)
                return
            if refs is not None and not refs:
                continue  # the wake-up of a stop, or of nothing
            try:
                if refs is None:
                    self.deliver_due()
                else:
                    self._deliver(refs)
            except Exception as exc:  # noqa: BLE001 - keep trying: the outage only delays
                log.error("outbox dispatcher: %s: %s", type(exc).__name__, exc)

    def start(self, interval: float) -> threading.Event:
        """Run :meth:`run` in a daemon thread (once); set the returned event to stop it
        (it ends within *interval*, or at once after a :meth:`soon`)."""
        if self._stop is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self.run, args=(self._stop, interval),
                                            name="signflow-dispatcher", daemon=True)
            self._thread.start()
        return self._stop

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread :meth:`start` runs, after what it was handed (:meth:`soon`) is
        sent, waiting at most *timeout* seconds; mail and webhooks handed over later
        go out in the committing thread again."""
        thread, self._thread = self._thread, None
        if thread is None or self._stop is None:
            return
        if self._handoff == self.soon:
            self._handoff = None
        self._soon.put(())  # wakes it: what was queued before this goes first
        self._stop.set()
        thread.join(timeout)


def leave_to_dispatcher(refs: Collection[str]) -> None:
    """The hand-off of a deployment with Redis: mail and webhooks wait, due at once,
    for ``signflow dispatcher``."""


def start_delivery(runtime: Runtime, interval: float = 2.0) -> threading.Event | None:
    """In the embedded mode (no Redis), deliver mail and webhooks, and retry failed
    deliveries, in a thread of this process; with Redis ``signflow dispatcher`` does
    it, under tests nothing polls (they call :func:`~signflow.core.outbox.deliver_due`)."""
    if not runtime.settings.embedded:
        return None
    runtime.dispatcher.hand_off(runtime.dispatcher.soon)  # no page waits on SMTP
    return runtime.dispatcher.start(interval)
