"""A whole signflow deployment on this machine, in a temp dir, on free ports.

Its own PostgreSQL cluster (``initdb``/``pg_ctl`` as the unprivileged user
``postgres``), its own ``redis-server``, an SMTP sink and a TSA in this process
(each can be taken down, and the SMTP sink can hang), the web app under
gunicorn as the Dockerfile starts it, ``signflow worker`` processes,
``signflow dispatcher`` and ``signflow scheduler``: the production shape of
docker-compose.yml, with the BankID simulator and the development seal as
the allowed stand-ins.  Nothing here touches the shared PostgreSQL (5432) or
Redis (6379).

Used by the fault tests (tests/test_faults.py) and meant for a load benchmark
too, so nothing in it depends on pytest (outside pytest, put ``tests/`` on
``sys.path`` first)::

    with FaultStack(StackOptions(redis_aof=True)) as stack:
        api = stack.api()
        round_id = api.create_round(signers("r1"))
        api.sign_all(round_id, stack.smtp)

Every child runs in a process group of its own; :meth:`FaultStack.close` ends
each group (and the cluster) even after a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from fault_services import (
    LINK,
    ROOT,
    Postgres,
    Process,
    RedisServer,
    SmtpSink,
    TsaServer,
    free_port,
    missing_tools,
    wait_until,
)

__all__ = ["FaultStack", "StackOptions", "Api", "Flight", "launch", "sign", "signers",
           "signatures_by_name", "wait_invited", "missing_tools", "wait_until", "LINK"]

#: Set by tests/conftest.py when the run is interrupted (Ctrl-C): a teardown that
#: would wait for a deployment's work in the background stops waiting.
INTERRUPTED = threading.Event()

#: The simulator's people; a signer named like one is approved as that person.
PEOPLE = {"Mikael Johansson": "198001012387", "Ardiana Demjaha": "197507152390",
          "Carina Leffler": "196911302385"}


def _simulator_shares_orders() -> bool:
    """Whether this signflow keeps the BankID simulator's orders in the database."""
    import importlib.util

    return importlib.util.find_spec("signflow.adapters.sim_store") is not None


@dataclass(frozen=True)
class StackOptions:
    #: The append-only file in Redis (docker-compose.yml turns it on).
    redis_aof: bool = True
    #: gunicorn ``--workers``/``--threads``: two as the Dockerfile has it once the
    #: BankID simulator keeps its orders in the database, one while they live in
    #: process memory (an order started in one worker is unknown to the other).
    web_workers: int = field(default_factory=lambda: 2 if _simulator_shares_orders() else 1)
    web_threads: int = 4
    #: ``signflow worker`` processes.
    workers: int = 1
    dispatcher_interval: float = 0.5
    #: ``signflow scheduler --interval`` (30: its default, as compose runs it); 0: none.
    scheduler_interval: float = 15.0  # signflow scheduler's default, as compose runs it
    #: Keep the temp dir (logs) after close.
    keep: bool = False
    #: The BankID simulator as a process of its own (``signflow bankid-simulator``,
    #: BankID's side, like the TSA and the SMTP sink) rather than inside web, so
    #: that BankID's work (its signed XML, its OCSP) is not counted as ours.
    bankid_apart: bool = False


@dataclass
class FaultStack:
    """The deployment; :meth:`start` brings it all up, :meth:`close` ends it all."""

    options: StackOptions = field(default_factory=StackOptions)

    def __post_init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="signflow-fault-"))
        self.base.chmod(0o755)  # the postgres user walks into base/pg
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.keys_dir, self.data_dir = self.base / "keys", self.base / "data"
        self.logs = self.base / "logs"
        self.logs.mkdir()
        self.pg = Postgres(self.base, free_port())
        self.redis = RedisServer(self.base, free_port(), aof=self.options.redis_aof)
        self.smtp = SmtpSink(free_port())
        self.tsa = TsaServer(free_port(), self.keys_dir)
        self.web: Process | None = None
        self.workers: list[Process] = []
        self.dispatcher: Process | None = None
        self.scheduler: Process | None = None
        self.bankid: Process | None = None
        self.bankid_port = free_port()
        self.token = ""
        self._workers_started = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNFLOW_")}
        env.update(
            PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
            PYTHONUNBUFFERED="1",
            SIGNFLOW_DATABASE_URL=self.pg.url, SIGNFLOW_REDIS_URL=self.redis.url,
            SIGNFLOW_DATA_DIR=str(self.data_dir), SIGNFLOW_KEYS_DIR=str(self.keys_dir),
            SIGNFLOW_WORKFLOWS_DIR=str(ROOT / "workflows"), SIGNFLOW_BASE_URL=self.url,
            SIGNFLOW_SECRET_KEY="fault-stack-secret", SIGNFLOW_DEV_MODE="false",
            SIGNFLOW_SMTP_URL=f"smtp://127.0.0.1:{self.smtp.port}",
            SIGNFLOW_TSA_URL=self.tsa.url, SIGNFLOW_ALLOW_DEV_BANKID="true",
            SIGNFLOW_ALLOW_DEV_SEAL="true", SIGNFLOW_LOG_FORMAT="json")
        if self.options.bankid_apart:
            env.update(SIGNFLOW_BANKID_URL=f"http://127.0.0.1:{self.bankid_port}",
                       SIGNFLOW_BANKID_ROOT=str(self.keys_dir / "bankid-sim-ca.pem"))
        return env

    def cli(self, *args: str) -> str:
        """``signflow ARGS…`` against this stack; its stdout."""
        done = subprocess.run([sys.executable, "-m", "signflow.cli", *args], env=self.env(),
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"signflow {' '.join(args)}: {done.stderr}")
        return done.stdout

    def _process(self, name: str, argv: list[str]) -> Process:
        return Process(name, argv, self.env(), self.logs / f"{name}.log")

    # -- bringing it up ---------------------------------------------------------
    def start(self) -> FaultStack:
        try:
            self.pg.init()
            self.redis.start()
            self.smtp.up()
            self.cli("keys", "init")
            if self.options.bankid_apart:
                self.start_bankid()
            self.cli("db", "upgrade")
            self.tsa.up()
            self.token = self.cli("users", "add", "sekretariatet@example.se", "--role",
                                  "secretariat", "--organisation",
                                  "Familjen Helsingborg").strip().splitlines()[-1]
            self.start_web()
            for _ in range(self.options.workers):
                self.start_worker()
            self.start_dispatcher()
            self.start_scheduler()
        except BaseException:
            self.close()
            raise
        return self

    def start_bankid(self) -> None:
        self.bankid = self._process("bankid", [
            sys.executable, "-m", "signflow.cli", "bankid-simulator",
            "--port", str(self.bankid_port)]).start()
        wait_until(lambda: requests.get(f"{self.bankid_url}/sim/orders", timeout=2).ok, 60,
                   f"the BankID simulator did not answer:\n{self.bankid.tail()}")

    @property
    def bankid_url(self) -> str:
        """Where a signer's phone reaches the BankID simulator."""
        if self.options.bankid_apart:
            return f"http://127.0.0.1:{self.bankid_port}"
        return f"{self.url}/bankid-sim"

    def start_web(self) -> None:
        self.web = self._process("web", [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.web_port}",
            "--workers", str(self.options.web_workers),
            "--threads", str(self.options.web_threads), "wsgi:app"]).start()
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=2).ok, 60,
                   f"gunicorn did not answer:\n{self.web.tail()}")

    def start_worker(self) -> Process:
        self._workers_started += 1
        worker = self._process(f"worker-{self._workers_started}",
                               [sys.executable, "-m", "signflow.cli", "worker"]).start()
        self.workers.append(worker)
        return worker

    def restart_workers(self) -> None:
        """Stop every worker (SIGTERM: RQ lets go of its scheduler lock) and start them
        again, so that no test inherits a worker an earlier fault left crippled."""
        for worker in self.workers:
            worker.stop()
        self.workers = []
        for _ in range(self.options.workers):
            self.start_worker()

    def start_dispatcher(self) -> None:
        self.dispatcher = self._process("dispatcher", [
            sys.executable, "-m", "signflow.cli", "dispatcher",
            "--interval", str(self.options.dispatcher_interval)]).start()

    def start_scheduler(self) -> None:
        if self.options.scheduler_interval <= 0:
            return
        self.scheduler = self._process("scheduler", [
            sys.executable, "-m", "signflow.cli", "scheduler",
            "--interval", str(self.options.scheduler_interval)]).start()

    def processes(self) -> list[Process]:
        found = [self.web, *self.workers, self.dispatcher, self.scheduler, self.bankid]
        return [p for p in found if p is not None]

    def close(self) -> None:
        for proc in self.processes():
            proc.stop(timeout=5)
        self.redis.process.kill()
        self.smtp.down()
        self.tsa.down()
        self.pg.close()
        if not self.options.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> FaultStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def heal(self) -> None:
        """Bring back whatever a fault left down: the cluster, Redis, SMTP, TSA, processes."""
        from redis import Redis

        if not (self.pg.data / "postmaster.pid").exists():
            self.pg.start()
        if not self.redis.process.alive():
            self.redis.start()
        if not self.redis.aof:
            self.redis.persist(True)
        wait_until(lambda: Redis(port=self.redis.port).ping(), 15, "Redis did not answer")
        if self.smtp.mode != "up":
            self.smtp.up()
        self.tsa.delay = 0.0
        self.tsa.up()
        self.restart_workers()
        for proc, start in ((self.web, self.start_web), (self.dispatcher, self.start_dispatcher),
                            (self.scheduler, self.start_scheduler)):
            if proc is not None and not proc.alive():
                start()

    def api(self) -> Api:
        return Api(self.url, self.token, bankid_url=self.bankid_url)

    def queued(self) -> int:
        """Jobs waiting in the RQ queue (not started, not scheduled for a retry)."""
        from redis import Redis
        from rq import Queue

        return Queue("signflow", connection=Redis(port=self.redis.port)).count

    def busy_worker(self) -> Process | None:
        """A worker process in the middle of a job, by RQ's own account."""
        from redis import Redis
        from rq import Worker

        ours = {worker.pid: worker for worker in self.workers}
        for seen in Worker.all(connection=Redis(port=self.redis.port)):
            if seen.pid in ours and seen.get_current_job_id():
                return ours[seen.pid]
        return None

    def log_lines(self, name: str, contains: str = "") -> list[str]:
        """Lines of a process's log (``web``, ``worker-1``, ``dispatcher`` …)."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return []
        return [line for line in path.read_text(errors="replace").splitlines()
                if contains in line]


def signers(tag: str) -> list[dict]:
    """Three signers named like the simulator's people, with addresses unique to *tag*."""
    roles = ("sekreterare", "justerare", "ordforande")
    return [{"name": name, "email": f"{role}-{tag}@example.se", "role": role,
             "organisation": "Familjen Helsingborg", "title": "Ledamot"}
            for name, role in zip(PEOPLE, roles, strict=True)]


class Api:
    """The secretariat's API and a signer's pages, over HTTP, as a client would:
    a 503 (or a refused connection) is tried again for up to *patience* seconds."""

    def __init__(self, url: str, token: str, patience: float = 30.0, *,
                 bankid_url: str = "") -> None:
        self.url, self.patience = url, patience
        self.bankid_url = bankid_url or f"{url}/bankid-sim"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, client: requests.Session, method: str, path: str,
              **kwargs) -> requests.Response:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                url = path if path.startswith("http") else f"{self.url}{path}"
                resp = client.request(method, url, **kwargs)
                if resp.status_code != 503 or time.monotonic() > deadline:
                    return resp
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def create_round(self, people: list[dict], pdf: bytes, *, title: str = "Protokoll",
                     timeout: float = 120.0) -> str:
        spec = {"title": title, "language": "sv", "order": "parallel", "signers": people}
        resp = self._send(self.http, "POST", "/api/v1/rounds",
                          data={"round": json.dumps(spec)},
                          files={"document": ("protokoll.pdf", pdf, "application/pdf")},
                          timeout=timeout)
        if resp.status_code != 201:
            raise RuntimeError(f"creating a round: {resp.status_code} {resp.text[:300]}")
        return resp.json()["id"]

    def round(self, round_id: str) -> dict:
        resp = self._send(self.http, "GET", f"/api/v1/rounds/{round_id}", timeout=10)
        resp.raise_for_status()
        return resp.json()

    def audit(self, round_id: str) -> dict:
        resp = self._send(self.http, "GET", f"/api/v1/rounds/{round_id}/audit", timeout=10)
        resp.raise_for_status()
        return resp.json()

    def document(self, round_id: str) -> bytes:
        resp = self._send(self.http, "GET", f"/api/v1/rounds/{round_id}/document", timeout=30)
        resp.raise_for_status()
        return resp.content

    def sign(self, token: str, name: str, timeout: float = 60.0) -> dict:
        """Start BankID on the signer's link, approve on the simulator as *name*, poll."""
        signer = requests.Session()
        started = self._send(signer, "POST", f"/sign/{token}/bankid",
                             headers={"Accept": "application/json"}, timeout=30)
        if started.status_code != 200:
            raise RuntimeError(f"starting BankID: {started.status_code} {started.text[:300]}")
        ref = started.json()["order_ref"]
        for action, body in (("open", {}), ("approve", {"personalNumber": PEOPLE[name]})):
            resp = self._send(signer, "POST", f"{self.bankid_url}/sim/orders/{ref}/{action}",
                              json=body, timeout=30)
            if resp.status_code != 200:
                raise RuntimeError(f"simulator {action}: {resp.status_code} {resp.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self._send(signer, "GET", f"/sign/{token}/bankid", timeout=30)
            if resp.ok and resp.json()["status"] != "pending":
                return resp.json()
            time.sleep(0.2)
        raise TimeoutError("the BankID order did not finish")


@dataclass
class Flight:
    """A round in flight: its id, its three signers, and whom of them has signed."""

    round_id: str
    people: list[dict]
    signed: set[str] = field(default_factory=set)


def launch(stack: FaultStack, tag: str, pdf: bytes, *, timeout: float = 120.0) -> Flight:
    """Create a round of three signers named after the simulator's people."""
    people = signers(tag)
    return Flight(stack.api().create_round(people, pdf, title=f"Protokoll {tag}",
                                           timeout=timeout), people)


def wait_invited(stack: FaultStack, flights: list[Flight], timeout: float = 60.0) -> None:
    """Until every signer of *flights* has an invitation at the SMTP sink."""
    for flight in flights:
        for person in flight.people:
            wait_until(lambda p=person: stack.smtp.invitations(p["email"]), timeout,
                       f"no invitation reached {person['email']}", every=0.2)


def sign(stack: FaultStack, flight: Flight, *which: int, invite_timeout: float = 90.0) -> None:
    """Signers *which* (indices) of *flight* sign over HTTP, once their invitation came."""
    api = stack.api()
    for i in which:
        person = flight.people[i]
        wait_until(lambda p=person: stack.smtp.invitations(p["email"]), invite_timeout,
                   f"no invitation reached {person['email']}", every=0.2)
        result = api.sign(stack.smtp.link(person["email"]), person["name"])
        if result["status"] != "complete":
            raise RuntimeError(f"{person['name']} could not sign: {result}")
        flight.signed.add(person["email"])


def signatures_by_name(pdf: bytes) -> dict[str, int]:
    """How many approval signatures (``/Sig``) each signing certificate's name has."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    counts: dict[str, int] = {}
    for sig in PdfFileReader(io.BytesIO(pdf)).embedded_signatures:
        if sig.sig_object.get("/Type") != "/Sig" or sig.signer_cert is None:
            continue
        name = sig.signer_cert.subject.native.get("common_name", "")
        counts[name] = counts.get(name, 0) + 1
    return counts


def assert_signed_once_each(api: Api, smtp, flight: Flight) -> None:
    """*flight*'s PDF holds exactly one approval signature per signer, and each
    signer's invitation reached *smtp* (the SMTP sink) exactly once."""
    names = [p["name"] for p in flight.people]
    found = signatures_by_name(api.document(flight.round_id))
    assert {n: found.get(n, 0) for n in names} == dict.fromkeys(names, 1), found
    for person in flight.people:
        got = smtp.invitations(person["email"])
        assert len(got) == 1, f"{len(got)} invitations reached {person['email']}"
