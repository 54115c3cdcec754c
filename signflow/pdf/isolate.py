"""Run PDF parsing of untrusted uploads in a child process with hard limits.

A hostile PDF (reference loops, decompression bombs, deep nesting) must end
in a clear refusal, never a hang, a 500 or a dead worker.  The child gets an
address-space and CPU limit and a wall-clock timeout; whatever kills it
becomes :class:`UnsupportedDocument`.  The parent only ever sees our own
re-written output.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass

from signflow.errors import SignflowError, UnsupportedDocument

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
    "thumbnails": "signflow.pdf.thumbnails:render_thumbnails",
}
#: Verification runs difference analysis over every page for every signature:
#: about 5 s for a 1000-page protocol here, so it gets more time than intake.
DEFAULT_LIMITS = {"prepare_clean": Limits(),
                  "verify": Limits(cpu_seconds=90, wall_seconds=60.0),
                  "thumbnails": Limits()}


def run(task: str, data: bytes, limits: Limits | None = None, **kwargs: object) -> object:
    """Run ``TASKS[task](data, **kwargs)`` in a limited child and return its result."""
    limits = limits or DEFAULT_LIMITS[task]
    payload = pickle.dumps((task, data, kwargs, limits), protocol=pickle.HIGHEST_PROTOCOL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNFLOW_")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "signflow.pdf.isolate"], input=payload,
            capture_output=True, timeout=limits.wall_seconds, env=env,
        )
    except subprocess.TimeoutExpired:
        raise UnsupportedDocument(
            f"the PDF took longer than {limits.wall_seconds:g} s to read and was refused",
            code="too_complex") from None
    if proc.returncode != 0 or not proc.stdout:
        raise UnsupportedDocument(
            "the PDF needs more memory or time to read than allowed and was refused",
            code="too_complex")
    status, value = pickle.loads(proc.stdout)
    if status == "ok":
        return value
    cls, message, code, fields = value
    error_cls = UnsupportedDocument if cls == "UnsupportedDocument" else SignflowError
    raise error_cls(message, code=code, **fields)


def _child() -> None:
    import resource

    task, data, kwargs, limits = pickle.loads(sys.stdin.buffer.read())
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
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _child()
