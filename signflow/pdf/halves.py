"""Work split over two processes, for a verification on a machine with a core to spare.

:func:`in_two` runs ``work(item)`` for every item: about half of the weight in a
helper process forked for the purpose, the rest here, and returns the results
in the items' order.  Forking shares what this process has read (the parsed
file) with the helper, copy-on-write, so neither reads it twice.

The helper dies with this process (Linux ``PR_SET_PDEATHSIG``), so the sandbox
that kills a verification at its wall-clock limit kills both; it inherits the
sandbox's memory and CPU limits.  Its results come back pickled through a pipe.
Should it fail in any way (no such signal on this system, a limit, a crash),
its items are worked here after all: the answer never depends on the helper.

Only for single-threaded processes, such as the sandbox's children: forking a
threaded one could copy a lock some other thread holds.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1


def fork_frozen() -> int:
    """``os.fork()``, the child's garbage collections leaving alone all it inherits
    (``gc.freeze``): walking that would copy every page of it into the child,
    about 0.1 s a verification.  The parent carries on unfrozen."""
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        raise
    if pid != 0:
        gc.unfreeze()
    return pid


def workers() -> int:
    """How many processes a verification here may use: two where this process may
    run on two cores or more, else one (a helper would only wait for the core)."""
    return 2 if len(os.sched_getaffinity(0)) >= 2 else 1


def split(weights: Sequence[float]) -> tuple[list[int], list[int]]:
    """Indices for this process and for the helper: heaviest first, each to the
    lighter side (so the two finish at about the same time)."""
    here: list[int] = []
    helper: list[int] = []
    load = [0.0, 0.0]
    for index in sorted(range(len(weights)), key=lambda i: -weights[i]):
        side = 0 if load[0] <= load[1] else 1
        (here, helper)[side].append(index)
        load[side] += weights[index]
    return sorted(here), sorted(helper)


def in_two(work: Callable[[T], R], items: Sequence[T], weights: Sequence[float]) -> list[R]:
    """``[work(item) for item in items]``, split over this process and a helper."""
    here, helper = split(weights)
    if not helper:
        return [work(item) for item in items]
    results: dict[int, R] = {}
    reader, writer = os.pipe()
    parent = os.getpid()
    pid = fork_frozen()
    if pid == 0:  # pragma: no cover - the helper, measured by its results
        os.close(reader)
        _helper(work, items, helper, writer, parent)
    os.close(writer)
    try:
        for index in here:
            results[index] = work(items[index])
        results.update(_collect(reader, pid))
    finally:
        os.close(reader)
    for index in helper:  # whatever the helper did not bring
        if index not in results:
            results[index] = work(items[index])
    return [results[index] for index in range(len(items))]


def _helper(work, items, indices, writer: int, parent: int) -> None:  # pragma: no cover
    code = 1
    try:
        if not _dies_with_parent(parent):
            code = 3  # it could outlive a killed sandbox: leave the work to the parent
            return
        answer = pickle.dumps({i: work(items[i]) for i in indices},
                              protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(writer, "wb", closefd=False) as out:
            out.write(answer)
        code = 0
    finally:
        os._exit(code)


def _dies_with_parent(parent: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):  # not Linux
        return False
    return os.getppid() == parent  # the parent did not die before the signal was set


def _collect(reader: int, pid: int) -> dict:
    """The helper's results, or nothing if it failed."""
    chunks = []
    while chunk := os.read(reader, 1 << 20):
        chunks.append(chunk)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by someone else: its exit is unknown
        return {}
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return {}
    try:
        answer = pickle.loads(b"".join(chunks))
    except Exception:  # a torn answer: as if it had failed
        return {}
    return answer if isinstance(answer, dict) else {}
