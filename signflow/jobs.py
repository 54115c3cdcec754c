"""Background jobs: ids in, reload, re-check state, call one use case.

Each job is idempotent (see the use cases), so RQ's retries are harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from signflow.core import housekeeping, signing
from signflow.core.ports import Services
from signflow.db import session_scope
from signflow.metrics import observe_job, queue_wait_seconds

#: Job name → use case taking (session, services, *ids).
JOBS: dict[str, Callable[..., object]] = {
    "apply_signatures": signing.apply_signatures,
    "renew_archive": housekeeping.renew_archive,
    "expire_due": lambda session, services: housekeeping.expire_due(session, services),
}


def run_job(sessions: sessionmaker[Session], services: Services, job: str,
            args: tuple[str, ...]) -> None:
    """Run *job* on *args* in a session of its own, committed if the job returns.

    Timed by name and outcome (and, under RQ, by its wait in the queue).
    """
    waited, outcome, started = queue_wait_seconds(), "failed", time.perf_counter()
    try:
        with session_scope(sessions) as session:
            JOBS[job](session, services, *args)
        outcome = "ok"
    finally:
        observe_job(job, outcome, time.perf_counter() - started, waited)


class InProcessRunner:
    """Runs jobs in this process with its services: the in-process queue's target.

    The services hold the queue that holds this runner, so the runner is made
    first and bound to the services once they are built
    (:func:`signflow.runtime.build_runtime`).
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._services: Services | None = None

    def bind(self, services: Services) -> None:
        """Run every job from now on with *services*."""
        self._services = services

    def __call__(self, job: str, args: tuple[str, ...]) -> None:
        if self._services is None:
            raise RuntimeError(f"job {job} enqueued before the services were built")
        run_job(self.sessions, self._services, job, args)


def run(job: str, *args: str) -> None:
    """RQ entry point: runs *job* in this worker's runtime."""
    from signflow.runtime import worker_runtime

    runtime = worker_runtime()
    run_job(runtime.sessions, runtime.services, job, args)
