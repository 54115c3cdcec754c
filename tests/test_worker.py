"""Jobs through RQ on Redis, run by a real `signflow worker` process."""

import pytest

from tests.conftest import REDIS_URL, SERVICES


@pytest.mark.skipif(not SERVICES, reason="runs in the PostgreSQL + Redis pass of `make test`")
def test_signatures_are_applied_by_the_worker_process(completed_round, runtime, worker,
                                                      queue_name):
    from redis import Redis
    from rq.registry import FinishedJobRegistry

    from signflow.adapters.queue import RQQueue

    assert isinstance(runtime.services.jobs, RQQueue)
    assert worker.poll() is None, "the worker process died"
    finished = FinishedJobRegistry(queue_name, connection=Redis.from_url(REDIS_URL))
    assert finished.count >= 1
    body, pdf = completed_round
    assert body["status"] == "completed" and pdf.startswith(b"%PDF-")


def test_in_process_jobs_by_default(runtime):
    from signflow.adapters.queue import InProcessQueue

    if SERVICES:
        pytest.skip("this pass runs jobs through RQ")
    assert isinstance(runtime.services.jobs, InProcessQueue)
