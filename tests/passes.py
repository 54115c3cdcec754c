"""`make test`: the suite's passes side by side, each in a pytest process of its own.

    .venv/bin/python tests/passes.py            # what `make test` runs after lint

- **sqlite**: the suite on SQLite with jobs in-process, browser tests included;
- **faults**: the fault tests and the compose rehearsal (``-m faults``), each
  of which starts a deployment of its own (PostgreSQL, Redis, gunicorn,
  workers) on free ports and breaks it;
- **services**: the suite again on the machine's PostgreSQL and Redis, jobs
  through RQ to a real worker (``tests/services.py`` says whether both answer;
  if not, this pass is skipped and says so).

Run one after another they took 23 minutes on this 2-core machine while using
a quarter of its CPU: most of a test's time is spent waiting on a browser, a
server, a subprocess or a deliberate outage.  Side by side: 9 minutes, about
as long as the SQLite pass alone.  The passes share no state: the
first two never touch the shared services (the fault tests start their own),
and the third is the only one that does.

Then, alone, **docker**: docker-compose.yml on a real Docker engine (``-m
docker``, tests/test_compose_docker.py): beside the others, its image builds
and containers made the longest pass six minutes longer.

Each pass writes to its own log; a line every 30 s shows how far each has come,
and each log is printed whole when its pass ends (skip reasons included).
Exits 0 only if every pass that ran passed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 30.0
#: Seconds an interrupted pass has to tear its fixtures down (a fault test's
#: deployments stop each process with a grace of their own)
STOPPING = 90.0
#: -q, with progress as tests done of how many (read for the progress line)
PYTEST = ["-m", "pytest", "-q", "-o", "console_output_style=count"]


def _hear_ctrl_c() -> None:
    """In the child before pytest starts: SIGINT as a terminal sends it (a shell
    starts a background job with it ignored, and the child would inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Pass:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    began: float = 0.0
    process: subprocess.Popen | None = None
    #: Started once the others have ended, not beside them.
    after: bool = False

    @property
    def returncode(self) -> int | None:
        """Its exit status, once :meth:`subprocess.Popen.poll` has seen it end."""
        return None if self.process is None else self.process.returncode

    def start(self) -> None:
        self.began = time.monotonic()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=_hear_ctrl_c)

    def progress(self) -> str:
        """Tests done (the outcome marks pytest -q has printed) of how many (its
        ``[ N/M]``), or that it is still collecting."""
        if self.returncode is not None:
            return "passed" if self.returncode == 0 else f"FAILED (exit {self.returncode})"
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "starting"
        marks = re.findall(r"^([.FEsxX]+)(?:\s+\[\s*\d+/(\d+)\])?\s*$", text, re.MULTILINE)
        if not marks:
            return "collecting"
        of = next((total for _, total in reversed(marks) if total), "?")
        return f"{sum(len(done) for done, _ in marks)}/{of}"

    def interrupt(self) -> None:
        """As Ctrl-C would: pytest tears its fixtures down (the fault tests'
        own PostgreSQL and Redis with them)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def end(self, by: float) -> None:
        """Wait for the pass until the monotonic time *by*, then end what is left."""
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, by - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def passes(logs: Path) -> list[Pass]:
    python = sys.executable
    plain = {k: v for k, v in os.environ.items() if not k.startswith("SIGNFLOW_TEST_")}
    found = [
        Pass("sqlite", [python, *PYTEST, "-m", "not faults and not docker"], plain,
             logs / "sqlite.log"),
        Pass("faults", [python, *PYTEST, "-m", "faults and not docker"], plain,
             logs / "faults.log"),
        # Docker's containers and builds beside the three passes slowed the longest of
        # them by minutes (14:42 against 8:38): alone, after them, it takes about 2.5
        Pass("docker", [python, *PYTEST, "-m", "docker"], plain, logs / "docker.log",
             after=True),
    ]
    urls = subprocess.run([python, str(ROOT / "tests" / "services.py")], cwd=ROOT,
                          capture_output=True, text=True).stdout.split()
    if urls:
        # the rate-limit tests' Redis database apart from the SQLite pass's (7)
        env = plain | dict(pair.split("=", 1) for pair in urls) | {
            "SIGNFLOW_TEST_LIMITS_REDIS_URL": "redis://127.0.0.1:6379/8"}
        found.append(Pass("services", [python, *PYTEST, "-m",
                                       "not browser and not faults and not docker"], env,
                          logs / "services.log"))
    else:
        print("== PostgreSQL/Redis not reachable on 127.0.0.1: the services pass is "
              "skipped ==", flush=True)
    return found


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt  # a CI timeout's SIGTERM stops the passes too


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    logs = Path(tempfile.mkdtemp(prefix="signflow-test-"))
    running = passes(logs)
    later = [p for p in running if p.after]
    side_by_side = [p for p in running if not p.after]
    for one in side_by_side:
        one.start()
    began = time.monotonic()
    print(f"== {len(side_by_side)} passes side by side "
          f"({', '.join(p.name for p in side_by_side)}), then "
          f"{', '.join(p.name for p in later) or 'none'}; logs in {logs} ==", flush=True)
    waiting, last_beat = list(side_by_side), time.monotonic()
    try:
        while waiting or later:
            if not waiting:  # the side-by-side passes are over: the next one alone
                one = later.pop(0)
                print(f"\n== {one.name} pass starts ==", flush=True)
                one.start()
                waiting.append(one)
            time.sleep(1.0)
            for one in list(waiting):
                assert one.process is not None
                if one.process.poll() is None:
                    continue
                waiting.remove(one)
                took = minutes(time.monotonic() - one.began)
                print(f"\n== {one.name} pass: {one.progress()} in {took} ==", flush=True)
                sys.stdout.write(one.log.read_text(encoding="utf-8", errors="replace"))
                print(f"== end of the {one.name} pass ==", flush=True)
            if waiting and time.monotonic() - last_beat >= HEARTBEAT:
                last_beat = time.monotonic()
                print(f"[{minutes(last_beat - began)}] "
                      + " · ".join(f"{p.name} {p.progress()}" for p in running
                                   if p.process is not None), flush=True)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: let the stopping end
        print("\ninterrupted: stopping the passes (their fixtures tear down; at most "
              f"{STOPPING:.0f} s)", flush=True)
        for one in waiting:
            one.interrupt()  # a pass not yet started has nothing to stop
        by = time.monotonic() + STOPPING
        for one in waiting:
            one.end(by)
        print("the passes were stopped", flush=True)
        return 130
    print(f"\n== all passes over in {minutes(time.monotonic() - began)}: "
          + ", ".join(f"{p.name} {p.progress()}" for p in running) + " ==", flush=True)
    return 0 if all(p.returncode == 0 for p in running) else 1


if __name__ == "__main__":
    sys.exit(main())
