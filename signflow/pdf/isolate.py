"""Run PDF parsing of untrusted uploads in a child process with hard limits.

A hostile PDF (reference loops, decompression bombs, deep nesting) must end
in a clear refusal, never a hang, a 500 or a dead worker.  The child gets an
address-space and CPU limit and a wall-clock timeout; whatever kills it
becomes :class:`UnsupportedDocument`.  The parent only ever sees our own
re-written output.

Each task gets a fresh child, forked from a warm template that has already
imported pyHanko and the tasks, so isolation costs a fork (milliseconds), not
an interpreter start:

* servers (web, worker) keep a *zygote*: a single-threaded process of their
  own, started on first use (or by :func:`warm`) without our secrets in its
  environment, that forks one child per task;
* a single-threaded command (``signflow verify``) calls
  :func:`fork_from_this_process` and forks its children itself.

Parent and child talk over a socket pair: the child first sends its pid (so
the parent can kill it when the wall-clock limit passes), then reads the task,
sets its limits and answers with the pickled result.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from signflow.errors import Busy, SignflowError, UnsupportedDocument
from signflow.pdf.halves import fork_frozen

#: What the child may do; generous for a 2000-page protocol, small for a bomb.
MEMORY_BYTES = 1536 * 1024 * 1024
CPU_SECONDS = 20
WALL_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = MEMORY_BYTES
    cpu_seconds: int = CPU_SECONDS
    wall_seconds: float = WALL_SECONDS


TASKS = {
    "prepare_clean": "signflow.pdf.prepare:prepare_clean",
    "verify": "signflow.pdf.verify:verify_pdf_der",
    "verify_etsi": "signflow.pdf.etsi_report:verify_pdf_etsi_der",
    "thumbnails": "signflow.pdf.thumbnails:render_thumbnails",
    "estimate": "signflow.pdf.cost:estimate",
}
#: Verification runs difference analysis over every page for every signature:
#: about 5 s for a 1000-page protocol here, so it gets more time than intake.
DEFAULT_LIMITS = {"prepare_clean": Limits(),
                  "verify": Limits(cpu_seconds=90, wall_seconds=60.0),
                  "verify_etsi": Limits(cpu_seconds=90, wall_seconds=60.0),
                  "thumbnails": Limits(),
                  # reads the page tree and the fields only: milliseconds for an honest file
                  "estimate": Limits(cpu_seconds=5, wall_seconds=5.0)}


def run(task: str, data: bytes, limits: Limits | None = None, **kwargs: object) -> object:
    """Run ``TASKS[task](data, **kwargs)`` in a limited child and return its result."""
    limits = limits or DEFAULT_LIMITS[task]
    payload = pickle.dumps((task, data, kwargs, limits), protocol=pickle.HIGHEST_PROTOCOL)
    status, value = pickle.loads(_in_child(task, payload, limits.wall_seconds))
    if status == "ok":
        return value
    cls, message, code, fields = value
    error_cls = UnsupportedDocument if cls == "UnsupportedDocument" else SignflowError
    raise error_cls(message, code=code, **fields)


def _refused(wall_seconds: float | None = None) -> UnsupportedDocument:
    if wall_seconds is not None:
        return UnsupportedDocument(
            f"the PDF took longer than {wall_seconds:g} s to read and was refused",
            code="too_complex")
    return UnsupportedDocument(
        "the PDF needs more memory or time to read than allowed and was refused",
        code="too_complex")


def _in_child(task: str, payload: bytes, wall_seconds: float) -> bytes:
    """Hand *payload* to a fresh child and return its pickled answer."""
    if _fork_here:
        _import_task(task)  # here, once: the children inherit it
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = fork_frozen()  # as the zygote does (below), for the child only
        if pid == 0:  # pragma: no cover - the child, measured by its answers
            ours.close()
            _serve(theirs)
        theirs.close()
        try:
            with ours:
                return _talk(ours, payload, wall_seconds)
        finally:
            os.waitpid(pid, 0)
    for attempt in (1, 2):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours:
            try:
                _zygote(fresh=attempt > 1).spawn(theirs)
            except OSError:  # the zygote died (killed, out of memory): once more, anew
                if attempt == 1:
                    continue
                raise
            return _talk(ours, payload, wall_seconds)
    raise AssertionError("unreachable")


#: How long a child may take to appear.  A zygote forks only once it has imported
#: and warmed every task, seconds of CPU that a machine busy starting several
#: processes stretches (CI once saw over ten): that wait is the service's, not the
#: PDF's, so the PDF's wall clock starts when its child says it is there.
START_SECONDS = 60.0


def _talk(conn: socket.socket, payload: bytes, wall_seconds: float) -> bytes:
    """Send the task, read the answer; kill the child should it overrun the wall clock
    (counted from the child's start)."""
    pid = 0
    try:
        conn.settimeout(START_SECONDS)
        pid = struct.unpack("!q", _read_exactly(conn, 8))[0]
    except TimeoutError:
        raise Busy("the document reader did not start in time; try again in a minute",
                   retry_after=30) from None
    except (OSError, EOFError, struct.error):  # the child died before it began
        raise _refused() from None
    deadline = time.monotonic() + wall_seconds

    def wait_at_most() -> None:
        conn.settimeout(max(0.01, deadline - time.monotonic()))

    try:
        conn.sendall(struct.pack("!q", len(payload)) + payload)
        wait_at_most()
        size = struct.unpack("!q", _read_exactly(conn, 8))[0]
        wait_at_most()
        return _read_exactly(conn, size)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # still at work (else it answered
            os.kill(pid, signal.SIGKILL)                # and exited on its own just now)
        raise _refused(wall_seconds) from None
    except (OSError, EOFError, struct.error):  # the child died: a limit, a crash
        raise _refused() from None


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    parts, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the child closed the connection")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _serve(conn: socket.socket) -> None:  # pragma: no cover - runs in the child
    """The child's whole life: say who it is, take the task, obey the limits, answer."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's choice, not a task's
    try:
        conn.sendall(struct.pack("!q", os.getpid()))
        payload = _read_exactly(conn, struct.unpack("!q", _read_exactly(conn, 8))[0])
        answer = _child_answer(payload)
        conn.sendall(struct.pack("!q", len(answer)) + answer)
    finally:
        os._exit(0)


def _child_answer(payload: bytes) -> bytes:
    import resource

    task, data, kwargs, limits = pickle.loads(payload)
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    module, _, name = TASKS[task].partition(":")
    func = getattr(__import__(module, fromlist=[name]), name)
    try:
        result: tuple = ("ok", func(data, **kwargs))
    except SignflowError as exc:
        result = ("err", (type(exc).__name__, exc.message, exc.code, exc.fields))
    except MemoryError:
        result = ("err", ("UnsupportedDocument", "the PDF needs more memory to read than "
                          "allowed and was refused", "too_complex", {}))
    except RecursionError:
        result = ("err", ("UnsupportedDocument", "the PDF is nested too deeply to read",
                          "too_complex", {}))
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


_fork_here = False


@contextlib.contextmanager
def forking_from_this_process() -> Iterator[None]:
    """Within, fork each task's child from this process, which has imported what
    the tasks need: for a single-threaded command (forking a threaded server could
    copy a lock some other thread holds; servers use the zygote)."""
    global _fork_here
    before, _fork_here = _fork_here, True
    try:
        yield
    finally:
        _fork_here = before


def _import_task(task: str) -> None:
    """Import *task*'s module and run its ``warm()``, if it has one: what each child
    would otherwise do again (read fonts, import lazily loaded libraries), done
    once in the process the children are forked from."""
    module = importlib.import_module(TASKS[task].partition(":")[0])
    warm_module = getattr(module, "warm", None)
    if warm_module is not None:
        warm_module()


def _import_tasks() -> None:
    for task in TASKS:
        _import_task(task)


class _Zygote:
    """A warm, single-threaded process of ours that forks one child per task."""

    def __init__(self) -> None:
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNFLOW_")}
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "signflow.pdf.isolate", "--zygote", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def alive(self) -> bool:
        if self.pid != os.getpid():  # a forked copy of this process shares its parent's
            return True              # zygote and cannot wait for it: a failed send tells
        return self.proc.poll() is None

    def spawn(self, conn: socket.socket) -> None:
        """Have the zygote fork a child that serves *conn* (handed over, then closed here)."""
        with conn, self.lock:
            socket.send_fds(self.control, [b"t"], [conn.fileno()])

    def close(self) -> None:
        self.control.close()
        if self.pid == os.getpid():
            self.proc.wait(timeout=10)


_zygote_lock = threading.Lock()
_the_zygote: _Zygote | None = None


def _zygote(*, fresh: bool = False) -> _Zygote:
    global _the_zygote
    with _zygote_lock:
        if fresh or _the_zygote is None or not _the_zygote.alive():  # first use, a fork,
            _the_zygote = _Zygote()                                     # or it died
        return _the_zygote


def _after_fork_in_child() -> None:
    """A lock held by another thread at the fork would stay held in the child forever."""
    global _zygote_lock
    _zygote_lock = threading.Lock()
    if _the_zygote is not None:
        _the_zygote.lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def warm() -> None:
    """Start this process's zygote now rather than on the first task."""
    _zygote()


def _zygote_main(control_fd: int) -> None:  # pragma: no cover - a process of its own
    from signflow.pdf import speedups

    speedups.install()  # for every child it forks
    _import_tasks()
    # Its children's garbage collections leave what they inherit alone: walking it
    # would copy every page of it into each child (about 0.1 s a verification).
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(control, 16, 1)
        except InterruptedError:
            continue
        if not msg:  # the parent is gone
            os._exit(0)
        for fd in fds:
            conn = socket.socket(fileno=fd)
            if os.fork() == 0:
                control.close()
                _serve(conn)
            conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        _zygote_main(int(sys.argv[2]))
