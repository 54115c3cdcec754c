"""Load on a whole deployment: rounds through the API, every signer through BankID.

    make load           # or: .venv/bin/python benchmarks/load.py [--rounds N]
                        #   [--clients C] [--workers W] [--idle S] [--stall S] [--keep]
                        #   [--bankid-inside]
    make load LOAD_ARGS="--rounds 10 --clients 4"     # a quick look

Starts the production-shaped stack of the fault tests (``tests/fault_stack.py``:
its own PostgreSQL and Redis on free ports, gunicorn with two web workers, W
``signflow worker`` processes (default 2), the dispatcher, the scheduler; and,
standing in for the outside services, an SMTP sink and a TSA in this process and
``signflow bankid-simulator`` as a process of its own, or inside web with
``--bankid-inside``, as the fault tests run it).  It waits for the stack to go quiet,
measures it idle for ``--idle`` seconds (default 10) while timing make bench's
PDF work, then C client threads (default 10) drive N rounds (default 200):
``POST /api/v1/rounds`` with the sample protocol, then each of the three
signers signs on the BankID simulator as ``fault_stack.sign`` does.  Once every
round reads ``completed``, or none has for ``--stall`` seconds (default 120), it
checks that none was lost, duplicated or left incomplete: the API lists N
rounds, each is completed, its PDF holds exactly one approval signature per
signer, each invitation arrived once, its audit chain is intact with three
signatures applied.  Exits 1 if not, and then keeps the stack's temp dir (logs;
``--keep`` keeps it anyway).

Reports, as a table and as JSON in ``benchmarks/results/load-<time>.json``
(not committed):
- wall time (first request to last round completed) and rounds per minute;
- p50/p95/max latency per endpoint (method and route pattern; every HTTP
  attempt, so a 503 the client retries counts once per try) and per round
  (created to completed, by the server's clock);
- CPU seconds per process group (web, each worker with what it forks,
  dispatcher, scheduler, PostgreSQL, Redis), each one's share and seconds per
  round, and the CPUs it used while idle; the driver apart (clients, SMTP
  sink, TSA); and what the rest of the machine used meanwhile (another job on
  the machine skews every figure);
- the deployment's CPU seconds per round against the PDF work of ``make bench``
  (``benchmarks/run.py``'s ``whole_round``: prepare, three signatures, seal, on
  the sample protocol), measured here in the same run, 11 times with the stack
  idle before the load and 11 times once it is over (the median of all 22:
  the machine's speed drifts within minutes); issue 10's goals are within
  1.3x, and ``POST /api/v1/rounds`` p95 under 1 s.

CPU comes from ``/proc/<pid>/stat`` (a process's own time plus its reaped
children's) summed over each group's process tree.  The isolation children of
``signflow.pdf.isolate`` are reaped by the kernel with their time lost, so a
thread samples them every 10 ms (about 4% of a CPU in this process).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
# the stack lives with the fault tests; make bench's round with the benchmarks
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

import requests  # noqa: E402
from fault_stack import (  # noqa: E402
    Api,
    FaultStack,
    Flight,
    StackOptions,
    launch,
    missing_tools,
    sign,
    signatures_by_name,
)
from run import BASE, whole_round  # noqa: E402

RESULTS = HERE / "results"
TICK = os.sysconf("SC_CLK_TCK")
#: Path segments that name one round, signer link or BankID order.
ROUTES = [(re.compile(r"^/api/v1/rounds/[^/]+"), "/api/v1/rounds/<id>"),
          (re.compile(r"^/sign/[^/]+"), "/sign/<token>"),
          (re.compile(r"/orders/[^/]+"), "/orders/<ref>")]


# -- latency ------------------------------------------------------------------------

def route(method: str, url: str) -> str:
    path = urlsplit(url).path
    for pattern, name in ROUTES:
        path = pattern.sub(name, path)
    return f"{method} {path}"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least *q* of them at or below it."""
    return sorted_values[max(1, math.ceil(len(sorted_values) * q)) - 1]


class Latencies:
    """Seconds per HTTP attempt, and its status, by route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)

    def record(self, name: str, seconds: float, status: str) -> None:
        with self._lock:
            self.seconds[name].append(seconds)
            self.statuses[name][status] += 1

    def summary(self) -> dict[str, dict]:
        with self._lock:
            return {name: {**spread(values), "statuses": dict(self.statuses[name])}
                    for name, values in sorted(self.seconds.items())}


def spread(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"count": len(ordered), "p50": percentile(ordered, 0.5),
            "p95": percentile(ordered, 0.95), "max": ordered[-1]}


class _TimedSession:
    """A session whose every request is timed into *latencies* by route."""

    def __init__(self, session: requests.Session, latencies: Latencies) -> None:
        self.session, self.latencies = session, latencies

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        began = time.perf_counter()
        try:
            resp = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            self.latencies.record(route(method, url), time.perf_counter() - began,
                                  type(exc).__name__)
            raise
        self.latencies.record(route(method, url), time.perf_counter() - began,
                              str(resp.status_code))
        return resp


class TimedApi(Api):
    """fault_stack's client, each HTTP attempt (its body read) timed."""

    def __init__(self, url: str, token: str, latencies: Latencies, bankid_url: str) -> None:
        super().__init__(url, token, bankid_url=bankid_url)
        self.latencies = latencies

    def _send(self, client, method: str, path: str, **kwargs) -> requests.Response:
        return super()._send(_TimedSession(client, self.latencies), method, path, **kwargs)


@dataclass
class Driven:
    """What ``launch`` and ``sign`` ask of a stack, with an API client that times."""

    stack: FaultStack
    latencies: Latencies = field(default_factory=Latencies)
    #: CPU seconds the client threads used (the rest of the driver's: SMTP, TSA, sampling).
    client_cpu: float = 0.0

    @property
    def smtp(self):
        return self.stack.smtp

    def api(self) -> TimedApi:
        return TimedApi(self.stack.url, self.stack.token, self.latencies,
                        self.stack.bankid_url)


# -- CPU ----------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of it and of the children it has reaped)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # fields[0] is field 3 (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17
        table[int(stat.parent.name)] = (int(fields[1]),
                                        sum(int(f) for f in fields[11:15]) / TICK)
    return table


def tree_cpu(roots: dict[str, int], prune: frozenset[int] = frozenset(),
             leaves: frozenset[int] = frozenset()) -> dict[str, float]:
    """CPU seconds of each root and all it forked, living or reaped, leaving out
    the subtrees of *prune* and the children of *leaves*.

    A child that ends moves its whole CPU into its parent's reaped-children
    count, so the sum stays true across work horses and backends coming and going.
    """
    table = _proc_table()
    kids: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        kids[ppid].append(pid)
    used = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += table.get(pid, (0, 0.0))[1]
            if pid not in leaves:
                todo += [kid for kid in kids[pid] if kid not in prune]
        used[name] = total
    return used


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (not idle, not waiting on I/O)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def process_roots(stack: FaultStack) -> dict[str, int]:
    postmaster = int((stack.pg.data / "postmaster.pid").read_text().split()[0])
    roots = {"web": stack.web.pid}
    roots |= {w.name: w.pid for w in stack.workers}
    roots |= {p.name: p.pid for p in (stack.dispatcher, stack.scheduler) if p is not None}
    return roots | {"postgresql": postmaster, "redis": stack.redis.process.pid}


def _stat_cpu(pid: int) -> tuple[str, float] | None:
    """(start time, CPU seconds) of *pid*, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19], (int(fields[11]) + int(fields[12])) / TICK


class IsolatedTasks(threading.Thread):
    """CPU of the isolation children (``signflow.pdf.isolate``), by group.

    Their zygote ignores SIGCHLD, so the kernel reaps them without adding their
    CPU to any parent: it is sampled here while they live, every *every* seconds
    (a lower bound: what a child does after its last sample is missed).
    """

    def __init__(self, roots: dict[str, int], every: float = 0.01) -> None:
        super().__init__(name="isolated-tasks", daemon=True)
        self.roots, self.every = roots, every
        self.zygotes: dict[int, str] = {}
        self.seen: dict[tuple[int, str], tuple[str, float]] = {}
        self.stopped, self.lock = threading.Event(), threading.Lock()

    def used(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        with self.lock:
            for group, cpu in self.seen.values():
                totals[group] += cpu
        return totals

    def find_zygotes(self) -> None:
        table, owners = _proc_table(), {pid: g for g, pid in self.roots.items()}
        found = {}
        for pid in table:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"signflow.pdf.isolate" in argv and b"--zygote" in argv:
                up = pid
                while up in table and up not in owners and up > 1:
                    up = table[up][0]
                if up in owners:
                    found[pid] = owners[up]
        self.zygotes = found  # a new dict: other threads read the old one meanwhile

    def run(self) -> None:
        last_scan = 0.0
        while not self.stopped.wait(self.every):
            if time.monotonic() - last_scan > 1.0:
                self.find_zygotes()
                last_scan = time.monotonic()
            for zygote, group in list(self.zygotes.items()):
                try:
                    kids = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
                except OSError:
                    continue
                for kid in map(int, kids):
                    if (found := _stat_cpu(kid)) is not None:
                        with self.lock:
                            self.seen[(kid, found[0])] = (group, found[1])


@dataclass
class CpuWindow:
    """CPU used by each process group between :meth:`begin` and :meth:`end`; the
    driver is this process and what it forked (an isolation zygote), not the stack."""

    roots: dict[str, int]
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.isolated = IsolatedTasks(self.roots | {"driver": os.getpid()})
        self.isolated.start()

    def now(self) -> dict[str, float]:
        # isolation children only as sampled, dead or alive
        now = tree_cpu(self.roots | {"driver": os.getpid()}, frozenset(self.roots.values()),
                       frozenset(self.isolated.zygotes))
        for group, cpu in self.isolated.used().items():
            now[group] += cpu
        now["machine"] = machine_cpu()
        return now

    def begin(self) -> None:
        self.before = self.now()

    def end(self) -> None:
        after = self.now()
        self.used = {name: after[name] - self.before[name] for name in after}

    def settle(self, timeout: float = 120.0, every: float = 2.0) -> None:
        """Until the stack uses under a tenth of a CPU (its processes have started)."""
        deadline, last = time.monotonic() + timeout, self.now()
        while time.monotonic() < deadline:
            time.sleep(every)
            now = self.now()
            if sum(now[g] - last[g] for g in self.roots) < 0.1 * every:
                return
            last = now


# -- make bench's PDF work ----------------------------------------------------------

def bench_pdf_work(pdf: bytes, window: CpuWindow, repeat: int = 11) -> dict:
    """``whole_round`` of benchmarks/run.py on *pdf*, set up as run.py sets it up:
    median CPU (this thread's and its isolation children's) and wall seconds of
    *repeat* runs after a warm-up, with each run's CPU seconds."""
    from signflow.pdf.keys import dev_timestamper
    from signflow.pdf.pki import init_keys, load_pki
    from signflow.pdf.service import PdfWorks

    keys = Path(tempfile.mkdtemp(prefix="signflow-load-")) / "keys"
    init_keys(keys, BASE)
    pki = load_pki(keys)
    works = PdfWorks(pki, dev_timestamper(pki), base_url=BASE, max_bytes=500 << 20,
                     max_pages=100_000)
    whole_round(works, pdf)
    window.isolated.find_zygotes()  # the warm-up started ours

    def used() -> float:
        return time.thread_time() + window.isolated.used()["driver"]

    cpu, wall = [], []
    for _ in range(repeat):
        c, w = used(), time.perf_counter()
        whole_round(works, pdf)
        wall.append(time.perf_counter() - w)
        cpu.append(used() - c)
    shutil.rmtree(keys.parent, ignore_errors=True)
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "repeat": repeat,
            "samples": cpu}


def bracketed(before: dict, after: dict) -> dict:
    """The PDF work measured before and after the load as one yardstick: the median
    of both sets of runs.  This machine's speed drifts by a fifth within minutes,
    and a yardstick measured only before the load moved the ratio by as much."""
    runs = before["samples"] + after["samples"]
    return {"cpu": statistics.median(runs), "wall": (before["wall"] + after["wall"]) / 2,
            "repeat": len(runs), "before": before["cpu"], "after": after["cpu"]}


# -- the load -----------------------------------------------------------------------

def drive(driven: Driven, pdf: bytes, rounds: int, clients: int,
          tag: str) -> tuple[list[Flight], list[str]]:
    """*rounds* rounds by *clients* threads, each creating a round and signing it all."""
    flights: list[Flight] = []
    failures: list[str] = []
    lock, numbers = threading.Lock(), itertools.count()

    def client() -> None:
        while True:
            with lock:
                i = next(numbers)
            if i >= rounds:
                with lock:
                    driven.client_cpu += time.thread_time()
                return
            try:
                flight = launch(driven, f"{tag}-{i}", pdf)
                with lock:
                    flights.append(flight)
                sign(driven, flight, 0, 1, 2)
            except Exception as exc:  # noqa: BLE001 - reported, and the run fails
                with lock:
                    failures.append(f"round {i}: {exc!r}"[:400])

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return flights, failures


def wait_completed(api: Api, flights: list[Flight], stall: float) -> dict[str, dict]:
    """Each round's last reading, once all read ``completed`` or none has for *stall*
    seconds (a backlog drains slowly; a lost round never comes)."""
    bodies: dict[str, dict] = {}
    pending = [f.round_id for f in flights]
    deadline = time.monotonic() + stall
    while True:
        for round_id in list(pending):
            bodies[round_id] = api.round(round_id)
            if bodies[round_id]["status"] == "completed":
                pending.remove(round_id)
                deadline = time.monotonic() + stall
        if not pending or time.monotonic() >= deadline:
            return bodies
        time.sleep(0.5)


def check_round(api: Api, smtp, flight: Flight, body: dict) -> list[str]:
    """What is wrong with one round (nothing, we hope)."""
    if body["status"] != "completed":
        events = api.audit(flight.round_id)["events"]
        applied = sum(e["type"] == "signature.applied" for e in events)
        return [f"{flight.round_id}: {body['status']}, signers "
                f"{[s.get('status') for s in body['signers']]}, {applied} applied, "
                f"last event {events[-1]['type'] if events else None}"]
    problems = []
    names = [p["name"] for p in flight.people]
    found = signatures_by_name(api.document(flight.round_id))
    if {n: found.get(n, 0) for n in names} != dict.fromkeys(names, 1):
        problems.append(f"{flight.round_id}: signatures {found}")
    audit = api.audit(flight.round_id)
    kinds = Counter(e["type"] for e in audit["events"])
    if not audit["intact"]:
        problems.append(f"{flight.round_id}: audit chain broken")
    if not kinds["signer.signed"] == kinds["signature.applied"] == 3 \
            or kinds["round.completed"] != 1:
        problems.append(f"{flight.round_id}: events {dict(kinds)}")
    for person in flight.people:
        if (got := len(smtp.invitations(person["email"]))) != 1:
            problems.append(f"{flight.round_id}: {got} invitations to {person['email']}")
    return problems


def check(api: Api, smtp, flights: list[Flight], bodies: dict[str, dict],
          rounds: int) -> list[str]:
    """Lost, duplicated or incomplete rounds and signatures; empty when all is well."""
    ids = [f.round_id for f in flights]
    problems = []
    if len(set(ids)) != len(ids):
        problems.append(f"duplicate round ids: {len(ids) - len(set(ids))}")
    total = api.http.get(f"{api.url}/api/v1/rounds", params={"per_page": 1},
                         timeout=30).json()["total"]
    if total != rounds:
        problems.append(f"{rounds} rounds driven, {len(ids)} created, the API lists {total}")
    for flight in flights:
        problems += check_round(api, smtp, flight, bodies[flight.round_id])
    return problems


# -- the report ---------------------------------------------------------------------

def _moment(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def round_times(bodies: dict[str, dict]) -> list[float]:
    """Seconds from created to completed, by the server's clock, of completed rounds."""
    return [_moment(b["completed_at"]) - _moment(b["created_at"])
            for b in bodies.values() if b["status"] == "completed" and b["completed_at"]]


def cpu_report(window: CpuWindow, idle: dict[str, float], rounds: int, seconds: float,
               client_cpu: float) -> dict:
    """Per group: seconds, share of the deployment's CPU, seconds per round, and the
    CPUs it used while the stack stood idle before the load."""
    used, groups = window.used, list(window.roots)
    service = sum(used[g] for g in groups)
    rows = {g: {"seconds": used[g], "share": used[g] / service if service else 0.0,
                "per_round": used[g] / rounds, "idle_cpus": idle[g]} for g in groups}
    capacity = (os.cpu_count() or 1) * seconds
    return {"groups": rows, "deployment": service, "per_round": service / rounds,
            "driver": used["driver"], "driver_clients": client_cpu, "machine": used["machine"],
            "rest_of_machine": used["machine"] - service - used["driver"],
            "machine_busy": used["machine"] / capacity, "window_seconds": seconds,
            "cpus": os.cpu_count()}


def print_report(result: dict) -> None:
    run, cpu, bench = result["run"], result["cpu"], result["bench_pdf_work"]
    print(f"\n{run['completed']}/{run['rounds']} rounds × 3 signers, {run['clients']} clients, "
          f"{run['workers']} workers: {run['wall_seconds']:.1f} s, "
          f"{run['rounds_per_minute']:.1f} rounds/min")
    print(f"\n{'latency (s)':52s} {'count':>6s} {'p50':>7s} {'p95':>7s} {'max':>7s}  statuses")
    rows = [*result["endpoints"].items(), ("round, created → completed", result["round"])]
    for name, row in rows:
        if not row.get("count"):
            continue
        print(f"{name:52s} {row['count']:6d} {row['p50']:7.3f} {row['p95']:7.3f} "
              f"{row['max']:7.3f}  {row.get('statuses', '')}")
    print(f"\n{'CPU':16s} {'seconds':>9s} {'share':>7s} {'per round':>10s} {'idle CPUs':>10s}")
    for name, row in cpu["groups"].items():
        print(f"{name:16s} {row['seconds']:9.1f} {row['share']:7.1%} {row['per_round']:10.3f} "
              f"{row['idle_cpus']:10.3f}")
    print(f"{'deployment':16s} {cpu['deployment']:9.1f} {'':7s} {cpu['per_round']:10.3f}")
    print(f"{'driver':16s} {cpu['driver']:9.1f}   (client threads {cpu['driver_clients']:.1f}; "
          f"the rest: SMTP sink, TSA ({run['timestamps']} timestamps), "
          f"{'BankID simulator, ' if run.get('bankid_apart') else ''}CPU sampling)")
    print(f"{'rest of machine':16s} {cpu['rest_of_machine']:9.1f}   (machine "
          f"{cpu['machine_busy']:.0%} busy over {cpu['window_seconds']:.0f} s, "
          f"{cpu['cpus']} CPUs)")
    print(f"\nmake bench's PDF work (prepare, 3 signatures, seal), this run: "
          f"{bench['cpu']:.3f} CPU-s ({bench['wall']:.3f} s wall; median of "
          f"{bench['repeat']} runs: {bench['before']:.3f} before the load, "
          f"{bench['after']:.3f} after)")
    print(f"deployment CPU per round / bench PDF work: {result['ratio']:.2f}x   (goal <= 1.3x)")
    post = result["endpoints"].get("POST /api/v1/rounds", {}).get("p95")
    if post is not None:
        print(f"POST /api/v1/rounds p95: {post:.2f} s   (goal < 1 s)")


def save(result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path


# -- the run ------------------------------------------------------------------------

def idle_and_bench(window: CpuWindow, pdf: bytes, seconds: float) -> tuple[dict, dict]:
    """The CPUs each group uses with the stack idle (over at least *seconds*), and
    make bench's PDF work measured meanwhile."""
    window.settle()
    began = time.monotonic()
    window.begin()
    bench = bench_pdf_work(pdf, window)
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    window.end()
    took = time.monotonic() - began
    return {g: used / took for g, used in window.used.items()}, bench


def measure(stack: FaultStack, args: argparse.Namespace, pdf: bytes) -> dict:
    """Drive the load on *stack*, check it, and gather the figures."""
    driven, tag = Driven(stack), f"load{int(time.time())}"
    window = CpuWindow(process_roots(stack))
    idle, before = idle_and_bench(window, pdf, args.idle)
    began, began_mono, stamps = time.time(), time.monotonic(), stack.tsa.answered
    window.begin()
    flights, failures = drive(driven, pdf, args.rounds, args.clients, tag)
    bodies = wait_completed(stack.api(), flights, args.stall)
    window.end()
    window.settle()  # the last mails sent: the stack idle again, as for the first
    bench = bracketed(before, bench_pdf_work(pdf, window))  # its children still sampled
    window.isolated.stopped.set()
    done = [_moment(b["completed_at"]) for b in bodies.values() if b["status"] == "completed"]
    wall = (max(done) if done else time.time()) - began
    print(f"load over after {wall:.0f} s; checking {len(flights)} rounds", flush=True)
    problems = failures + check(stack.api(), stack.smtp, flights, bodies, args.rounds)
    cpu = cpu_report(window, idle, max(1, len(done)), time.monotonic() - began_mono,
                     driven.client_cpu)
    return {"run": {"rounds": args.rounds, "clients": args.clients, "workers": args.workers,
                    "bankid_apart": not args.bankid_inside,
                    "created": len(flights), "completed": len(done), "wall_seconds": wall,
                    "rounds_per_minute": len(done) / wall * 60,
                    "timestamps": stack.tsa.answered - stamps,
                    "started_at": datetime.fromtimestamp(began, UTC).isoformat()},
            "endpoints": driven.latencies.summary(),
            "round": spread(round_times(bodies)) if done else {},
            "cpu": cpu, "bench_pdf_work": bench, "ratio": cpu["per_round"] / bench["cpu"],
            "problems": problems}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="signflow worker processes")
    ap.add_argument("--stall", type=float, default=120.0,
                    help="after the last signature, give up once no round has completed "
                         "for this many seconds")
    ap.add_argument("--idle", type=float, default=10.0,
                    help="seconds the idle stack is measured for, before the load")
    ap.add_argument("--keep", action="store_true", help="keep the stack's temp dir (logs)")
    ap.add_argument("--bankid-inside", action="store_true",
                    help="the BankID simulator inside web (as the fault tests run it), its "
                         "work counted as web's; by default it is a process of its own, "
                         "counted with the driver like the TSA and the SMTP sink")
    args = ap.parse_args()
    if missing := missing_tools():
        print("cannot start the stack, this machine lacks " + ", ".join(missing))
        return 2
    from signflow.pdf.pages import sample_protocol

    pdf = sample_protocol()
    load_before = os.getloadavg()
    # kept by the stack, removed here unless asked for or something went wrong
    options = StackOptions(workers=args.workers, keep=True, bankid_apart=not args.bankid_inside)
    with FaultStack(options) as stack:
        print(f"stack up at {stack.url}, logs in {stack.logs}", flush=True)
        result = measure(stack, args, pdf)
    result |= {"loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    print_report(result)
    print(f"\nJSON: {save(result)}")
    for problem in result["problems"][:50]:
        print(f"PROBLEM {problem}")
    if result["problems"] or args.keep:
        print(f"the stack's logs are kept in {stack.logs}")
    else:
        shutil.rmtree(stack.base, ignore_errors=True)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)
    sys.exit(main())
