"""Verification in two processes: the same answer, in order, whatever the helper does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from signflow.pdf import halves
from signflow.pdf.verify import verify_isolated


def test_the_heaviest_go_first_each_to_the_lighter_side():
    here, helper = halves.split([5, 4, 3, 2, 1])
    assert sorted(here + helper) == [0, 1, 2, 3, 4]
    loads = sum(5 - i for i in here), sum(5 - i for i in helper)
    assert abs(loads[0] - loads[1]) <= 1
    assert halves.split([7]) == ([0], [])


def test_results_come_in_order_from_two_processes():
    results = halves.in_two(lambda x: (x * x, os.getpid()), list(range(6)), [1] * 6)
    assert [square for square, _ in results] == [x * x for x in range(6)]
    assert len({pid for _, pid in results}) == 2


def test_what_the_helper_fails_at_is_done_here():
    parent = os.getpid()

    def work(x):
        if os.getpid() != parent:
            raise RuntimeError("the helper breaks")
        return x + 1

    assert halves.in_two(work, [1, 2, 3, 4], [1, 1, 1, 1]) == [2, 3, 4, 5]


def test_a_helper_that_could_outlive_us_does_nothing(monkeypatch):
    monkeypatch.setattr(halves, "_dies_with_parent", lambda parent: False)
    pids = halves.in_two(lambda x: os.getpid(), [1, 2, 3, 4], [1, 1, 1, 1])
    assert set(pids) == {os.getpid()}


def test_the_helper_dies_with_the_process_that_forked_it(tmp_path: Path):
    """The sandbox kills a verification that overruns its time: the helper goes too."""
    marker = tmp_path / "helper.pid"
    script = textwrap.dedent(f"""
        import os, time
        from signflow.pdf import halves
        def work(x):
            if x == 1:
                open({str(marker)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
        halves.in_two(work, [0, 1], [1, 1])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline, "the helper never started"
            time.sleep(0.05)
        helper = int(marker.read_text())
        assert helper != proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while _alive(helper):
        assert time.monotonic() < deadline, "the helper outlived its parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_round_verified_in_two_processes_reads_as_in_one(demo_run, keys_dir):
    """In the sandbox's single-threaded children, as the service and the CLI run it."""
    from signflow.pdf.pki import load_pki

    root = [load_pki(keys_dir).root.cert]
    one = verify_isolated(demo_run.pdf, root, workers=1).to_dict()
    two = verify_isolated(demo_run.pdf, root, workers=2).to_dict()
    assert len(one["signatures"]) >= 4 and one["indication"] == "TOTAL-PASSED"
    assert two == one
