"""Job queues: in-process (after commit, same process) and RQ on Redis."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs each job right away (we are already after commit), one at a time.

    A failure is logged, not raised: the change that enqueued the job is
    committed, and the job is idempotent, so the next trigger retries it.
    """

    def __init__(self, runner: Callable[[str, tuple[str, ...]], None]) -> None:
        self.runner = runner
        self._lock = threading.Lock()

    def enqueue(self, job: str, *args: str) -> None:
        with self._lock:
            try:
                self.runner(job, args)
            except Exception:
                log.exception("job %s%r failed", job, args)


class RQQueue:
    """Enqueues onto RQ; ``signflow worker`` runs the jobs."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        from redis import Redis
        from rq import Queue

        # bounded waits: a Redis that hangs must not hold a request (the outbox retries)
        self.queue = Queue(queue_name, connection=Redis.from_url(
            redis_url, socket_connect_timeout=3, socket_timeout=10))

    def enqueue(self, job: str, *args: str) -> None:
        # no RQ retries: they wait on RQ's own scheduler, which a Redis restart kills and
        # a dead worker's lock blocks; a failed job's work is found again by
        # `signflow scheduler` (housekeeping.tick), which needs nothing from Redis
        self.queue.enqueue("signflow.jobs.run", job, *args, job_timeout=600)
