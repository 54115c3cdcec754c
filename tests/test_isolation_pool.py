"""The sandbox is warm: each task is a fresh child forked from a process that has
already imported pyHanko, with the same limits as before (issue 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from signflow.errors import Busy, UnsupportedDocument
from signflow.pdf import isolate
from signflow.pdf.pages import sample_protocol


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def thumbnails(data: bytes, limits: isolate.Limits | None = None):
    return isolate.run("thumbnails", data, limits, max_bytes=10 << 20, max_pages=50)


def test_tasks_run_in_fresh_children_of_one_warm_zygote():
    data = sample_protocol()
    thumbnails(data)  # the zygote is up
    zygote = isolate._zygote().proc.pid
    started = time.perf_counter()
    for _ in range(3):
        assert thumbnails(data)
    each = (time.perf_counter() - started) / 3
    assert isolate._zygote().proc.pid == zygote  # the same template, reused
    # its children served one task each and are gone (reaped by the kernel)
    deadline = time.monotonic() + 5
    while children_of(zygote) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children_of(zygote) == set()
    print(f"a warm task takes {each * 1000:.0f} ms")


def test_a_dead_zygote_is_replaced_and_the_task_still_runs():
    thumbnails(sample_protocol())
    old = isolate._zygote().proc
    os.kill(old.pid, signal.SIGKILL)
    old.wait(timeout=10)
    assert thumbnails(sample_protocol())
    assert isolate._zygote().proc.pid != old.pid


def test_a_zygote_still_starting_takes_none_of_the_pdf_s_time(monkeypatch):
    """A fresh zygote imports and warms every task before it forks a child (seconds
    on a busy machine: CI once refused the first upload of two deployments
    starting at once as "took longer than 10 s").  The PDF's wall clock starts
    when its child is there; a zygote that never forks one is a 503, not a 422."""
    data = sample_protocol()
    isolate._zygote(fresh=True)  # starting now: imports for a second or more
    started = time.monotonic()
    assert thumbnails(data, isolate.Limits(wall_seconds=0.5))  # the task's own time only
    print(f"first task on a fresh zygote: {time.monotonic() - started:.1f} s")

    monkeypatch.setattr(isolate, "START_SECONDS", 0.2)
    isolate._zygote().proc.send_signal(signal.SIGSTOP)  # alive, and forks nothing
    try:
        with pytest.raises(Busy) as busy:
            thumbnails(data)
        assert busy.value.code == "busy" and busy.value.fields["retry_after"] > 0
    finally:
        isolate._zygote().proc.send_signal(signal.SIGCONT)
    monkeypatch.undo()
    isolate._zygote(fresh=True)  # the stopped one's queue holds a child for a gone task
    assert thumbnails(data)


def test_the_limits_still_hold_in_a_forked_child():
    data = sample_protocol()
    with pytest.raises(UnsupportedDocument) as too_slow:
        thumbnails(data, isolate.Limits(wall_seconds=0.001))
    assert too_slow.value.code == "too_complex" and "longer than" in too_slow.value.message
    with pytest.raises(UnsupportedDocument) as too_big:
        thumbnails(data, isolate.Limits(memory_bytes=64 * 1024 * 1024))
    assert too_big.value.code == "too_complex"
    assert thumbnails(data)  # and the next task is served as usual


def test_the_zygote_keeps_no_secret_of_ours():
    isolate.warm()
    environ = Path(f"/proc/{isolate._zygote().proc.pid}/environ").read_bytes()
    assert b"SIGNFLOW_" not in environ


def test_a_command_forks_its_children_itself(tmp_path):
    """`signflow verify` is one thread with pyHanko loaded: no zygote, no second
    interpreter; what it forks obeys the same limits."""
    script = tmp_path / "fork_here.py"
    script.write_text(
        "from signflow.errors import Busy, UnsupportedDocument\n"
        "from signflow.pdf import isolate\n"
        "from signflow.pdf.pages import sample_protocol\n"
        "data = sample_protocol()\n"
        "with isolate.forking_from_this_process():\n"
        "    assert isolate.run('thumbnails', data, max_bytes=1 << 24, max_pages=9)\n"
        "    try:\n"
        "        isolate.run('thumbnails', data, isolate.Limits(wall_seconds=0.001),\n"
        "                    max_bytes=1 << 24, max_pages=9)\n"
        "    except UnsupportedDocument as exc:\n"
        "        print('refused', exc.code)\n"
        "assert isolate._the_zygote is None\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused too_complex"


def test_the_zygote_does_once_what_every_child_would_do_again(tmp_path):
    """Its children import nothing and read no font: each task module's ``warm()``
    did it in the zygote (fontTools' 77 modules cost every intake 50 ms)."""
    upload = tmp_path / "upload.pdf"
    upload.write_bytes(sample_protocol())  # made here: making it reads the fonts
    script = tmp_path / "warm.py"
    script.write_text(f"""
import pickle, sys
from signflow.core.ports import SignerBlock
from signflow.pdf import isolate
from signflow.pdf.pages import font_data
isolate._import_tasks()  # as the zygote does before it forks
before = set(sys.modules), font_data.cache_info().misses
data = open({str(upload)!r}, "rb").read()
limits = dict(max_bytes=1 << 24, max_pages=50)
for task, kwargs in [
    ("prepare_clean", dict(round_id="r", title="T", language="sv", verify_url="http://x/v",
                           blocks=[SignerBlock(1, "Underskrift1", "Ordförande")], **limits)),
    ("thumbnails", limits),
]:
    answer = isolate._child_answer(pickle.dumps((task, data, kwargs, isolate.Limits())))
    assert pickle.loads(answer)[0] == "ok", task
print(sorted(set(sys.modules) - before[0] - {{"resource"}}), before[1],
      font_data.cache_info().misses)
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] 2 2"  # both fonts read once, before the tasks
