"""Background jobs: ids in, reload, re-check state, call one use case.

Each job is idempotent (see the use cases), so RQ's retries are harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from signflow.core import housekeeping, signing

#: Job name → use case taking (session, services, *ids).
JOBS: dict[str, Callable[..., object]] = {
    "apply_signatures": signing.apply_signatures,
    "renew_archive": housekeeping.renew_archive,
    "expire_due": lambda session, services: housekeeping.expire_due(session, services),
}


def run(job: str, *args: str) -> None:
    """RQ entry point: runs *job* in this worker's runtime."""
    from signflow.runtime import run_job, worker_runtime

    run_job(worker_runtime(), job, args)
