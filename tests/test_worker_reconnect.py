"""A worker outlives a Redis restart (issue 10): it reconnects instead of exiting.

The test starts a Redis of its own on a free port (never the shared one),
restarts it under a running `signflow worker`, and checks that jobs queued
after the restart are done by the same worker process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from signflow.config import Settings
from signflow.migrate import upgrade
from tests.conftest import free_port

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="LOUD SKIP: redis-server is not installed, so a Redis "
    "restart under a worker cannot be tested here")


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from redis import Redis

    deadline = time.monotonic() + 10
    while True:
        try:
            Redis(port=port, socket_connect_timeout=0.5).ping()
            return proc
        except Exception:  # noqa: BLE001 - not up yet
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def job_done(port: int, queue: str, timeout: float = 60.0) -> None:
    """Queue a real job (expire_due) and wait until a worker has finished it."""
    from redis import Redis
    from rq import Queue

    job = Queue(queue, connection=Redis(port=port)).enqueue("signflow.jobs.run", "expire_due")
    deadline = time.monotonic() + timeout
    while job.get_status(refresh=True) != "finished":
        assert time.monotonic() < deadline, f"the job is {job.get_status()}, not finished"
        time.sleep(0.2)


def test_a_worker_reconnects_after_redis_restarts(tmp_path, keys_dir, base_url):
    port = free_port()
    redis = start_redis(port)
    db = tmp_path / "worker.sqlite3"
    upgrade(Settings(data_dir=tmp_path, database_url=f"sqlite:///{db}"))
    env = dict(os.environ, SIGNFLOW_DATABASE_URL=f"sqlite:///{db}",
               SIGNFLOW_REDIS_URL=f"redis://127.0.0.1:{port}/0", SIGNFLOW_RQ_QUEUE="restart",
               SIGNFLOW_DATA_DIR=str(tmp_path), SIGNFLOW_KEYS_DIR=str(keys_dir),
               SIGNFLOW_BASE_URL=base_url, SIGNFLOW_SECRET_KEY="test-secret",
               SIGNFLOW_DEV_MODE="true")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen([sys.executable, "-m", "signflow.cli", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        job_done(port, "restart")
        # Redis goes away while a job runs (RQ itself survives an idle restart)
        from redis import Redis
        from rq import Queue

        busy = Queue("restart", connection=Redis(port=port)).enqueue("time.sleep", 4)
        deadline = time.monotonic() + 30
        while busy.get_status(refresh=True) != "started":
            assert time.monotonic() < deadline, "the sleeping job never started"
            time.sleep(0.1)
        redis.kill()  # as a crash or `docker restart` would, nothing kept
        redis.wait()
        time.sleep(6)
        assert worker.poll() is None, "the worker exited when Redis went away mid-job"
        redis = start_redis(port)
        job_done(port, "restart")
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)  # and a shutdown signal still ends it
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        redis.kill()
        log.close()
