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


@pytest.mark.skipif(not SERVICES, reason="runs in the PostgreSQL + Redis pass of `make test`")
def test_the_worker_metrics_count_the_jobs_it_ran(completed_round, worker):
    """Jobs run in the worker process itself, so its /metrics sees them (a forked
    work horse took its timings with it when it exited)."""
    pytest.importorskip("prometheus_client", reason="LOUD SKIP: prometheus-client missing")
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=10).text
    runs = {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "signflow_job_seconds_count"}
    assert runs.get((("job", "apply_signatures"), ("outcome", "ok")), 0) >= 1, runs


def test_in_process_jobs_by_default(runtime):
    from signflow.adapters.queue import InProcessQueue

    if SERVICES:
        pytest.skip("this pass runs jobs through RQ")
    assert isinstance(runtime.services.jobs, InProcessQueue)
