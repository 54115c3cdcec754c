"""Test fixtures: real keys, real databases, a real HTTP socket where it matters.

By default the suite runs on SQLite with jobs in-process.  With
``SIGNFLOW_TEST_DATABASE_URL`` and ``SIGNFLOW_TEST_REDIS_URL`` set (``make test``
sets them when PostgreSQL and Redis answer) it runs on PostgreSQL, and jobs go
through RQ to a real ``signflow worker`` process.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from signflow import create_app
from signflow.config import Settings
from signflow.core.accounts import add_user, issue_token
from signflow.core.models import Base
from signflow.db import make_engine, session_scope
from signflow.demo import links_in_outbox, sign_over_http
from signflow.migrate import upgrade
from signflow.pdf.pages import sample_protocol
from signflow.pdf.pki import init_keys
from signflow.runtime import build_runtime

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PG_URL = os.environ.get("SIGNFLOW_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("SIGNFLOW_TEST_REDIS_URL", "")
SERVICES = bool(PG_URL and REDIS_URL)


#: The fixtures through which a test reaches the database or Redis: on the
#: PostgreSQL + Redis pass a test that asks for none of them (and whose module
#: reads none of PG_URL, REDIS_URL, SERVICES) would repeat the SQLite pass exactly.
SERVICE_FIXTURES = frozenset({"template_db", "database_url", "queue_name", "worker"})


def _reaches_services(item) -> bool:
    if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and any(name in vars(module)
                                      for name in ("PG_URL", "REDIS_URL", "SERVICES"))


def pytest_collection_modifyitems(config, items):
    """Browser tests (tests/test_browser*.py) carry the mark ``browser``: `make test`
    runs them on the SQLite pass only, since the pages do not change with the database.

    They run last: Playwright's sync API keeps an asyncio loop running in the main
    thread while a browser is open, and pyHanko's asyncio.run() in a later test's
    main thread would refuse to start under it.

    On the PostgreSQL + Redis pass, the tests that reach neither (PDF work,
    verification, parsers: a third of the suite's time) are deselected: they ran,
    the same, on the SQLite pass."""
    for item in items:
        if item.path.name.startswith("test_browser"):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.path.name.startswith("test_browser"))
    if SERVICES:
        apart = [item for item in items if not _reaches_services(item)]
        if apart:
            config.hook.pytest_deselected(items=apart)
            items[:] = [item for item in items if _reaches_services(item)]


def pytest_keyboard_interrupt(excinfo):
    """Interrupted (Ctrl-C): called before the fixtures left standing are torn
    down, so the fault tests' teardown stops waiting for work in the background."""
    stacks = sys.modules.get("fault_stack")  # as tests/test_faults.py imports it
    if stacks is not None:
        stacks.INTERRUPTED.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory, base_url) -> Path:
    path = tmp_path_factory.mktemp("keys")
    init_keys(path, base_url)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def queue_name() -> str:
    return f"signflow-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> str:
    """The schema made once by Alembic; each test gets a copy (SQLite) or a clean slate (PG)."""
    if PG_URL:
        upgrade(Settings(data_dir=tmp_path_factory.mktemp("pg"), database_url=PG_URL))
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(Settings(data_dir=path.parent, database_url=f"sqlite:///{path}"))
    return str(path)


def settle_worker(queue_name: str, timeout: float = 120.0) -> None:
    """Let the worker finish what an earlier test left it, and drop pending retries.

    Emptying the tables under a job still writing a round deadlocks
    (TRUNCATE's table locks against the job's row locks), so wait first.
    """
    from redis import Redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    with Redis.from_url(REDIS_URL) as conn:
        queue = Queue(queue_name, connection=conn)
        started, scheduled = StartedJobRegistry(queue=queue), ScheduledJobRegistry(queue=queue)
        deadline = time.monotonic() + timeout
        while True:
            for job_id in scheduled.get_job_ids():  # retries of an earlier test's jobs
                scheduled.remove(job_id, delete_job=True)
            # a job moves queue → intermediate queue → started registry
            if not (queue.count or queue.intermediate_queue.get_job_ids() or started.count
                    or scheduled.count):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker is still busy after {timeout:g} s")
            time.sleep(0.05)


@pytest.fixture
def database_url(template_db, tmp_path, queue_name) -> str:
    if PG_URL:
        if SERVICES:
            settle_worker(queue_name)
        engine = make_engine(PG_URL)
        # the outbox first: the dispatcher process's every transaction begins by
        # claiming an outbox row, so it never holds another table TRUNCATE still wants
        tables = sorted(Base.metadata.sorted_tables, key=lambda t: t.name != "outbox")
        names = ", ".join(t.name for t in tables)
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                break
            except OperationalError as exc:
                # an earlier test's straggler (a live server's last poll, a thread's
                # after-commit call) took two tables in another order: PostgreSQL ends
                # one of the two, and when it is this TRUNCATE, it is simply tried again
                if "deadlock detected" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.2)
        engine.dispose()
        return PG_URL
    path = tmp_path / "signflow.sqlite3"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url, data_dir, keys_dir, base_url, queue_name, tmp_path) -> Settings:
    return Settings(
        data_dir=data_dir if SERVICES else tmp_path, database_url=database_url,
        keys_dir=keys_dir, base_url=base_url, secret_key="test-secret",
        redis_url=REDIS_URL if SERVICES else "", rq_queue=queue_name, testing=True,
        dev_mode=True,
    )


@pytest.fixture(scope="session")
def worker(data_dir, keys_dir, base_url, queue_name, template_db, tmp_path_factory):
    """A real `signflow worker` process when the suite runs with Redis."""
    if not SERVICES:
        yield None
        return
    env = dict(os.environ, SIGNFLOW_DATABASE_URL=PG_URL, SIGNFLOW_REDIS_URL=REDIS_URL,
               SIGNFLOW_RQ_QUEUE=queue_name, SIGNFLOW_DATA_DIR=str(data_dir),
               SIGNFLOW_KEYS_DIR=str(keys_dir), SIGNFLOW_BASE_URL=base_url,
               SIGNFLOW_SECRET_KEY="test-secret", SIGNFLOW_DEV_MODE="true")
    # a file, not a pipe: an unread pipe fills up and blocks the worker mid-suite
    logs = tmp_path_factory.mktemp("worker")
    log = open(logs / "worker.log", "wb")  # noqa: SIM115
    metrics_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "signflow.cli", "worker"],
                            env=dict(env, SIGNFLOW_METRICS_PORT=str(metrics_port)),
                            stdout=log, stderr=subprocess.STDOUT)
    proc.metrics_port = metrics_port  # type: ignore[attr-defined]
    # as in production, mail and webhooks go out through a dispatcher of their own
    dispatch_log = open(logs / "dispatcher.log", "wb")  # noqa: SIM115
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "signflow.cli", "dispatcher", "--interval", "0.1"], env=env,
        stdout=dispatch_log, stderr=subprocess.STDOUT)
    DISPATCHER.append(dispatcher)
    yield proc
    for child in (proc, dispatcher):
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    log.close()
    dispatch_log.close()


#: The RQ pass's `signflow dispatcher` process, once started.
DISPATCHER: list[subprocess.Popen] = []


@pytest.fixture
def dispatcher_paused(settings, worker):
    """Stop the RQ pass's dispatcher process for a test that plays the dispatcher
    itself (after the tables were emptied, so the process holds no lock that
    matters; it goes on, finishing what it held, before the next test empties them)."""
    import signal

    paused = [p for p in DISPATCHER if p.poll() is None]
    for p in paused:
        os.kill(p.pid, signal.SIGSTOP)
    yield
    for p in paused:
        os.kill(p.pid, signal.SIGCONT)


@pytest.fixture
def outbox_here(app, runtime, dispatcher_paused):
    """For tests that play SMTP, the queue or the dispatcher in this process: the
    outbox is delivered in the committing thread, on the RQ pass too, while the
    dispatcher process waits (after the app: create_app sets delivery up)."""
    runtime.dispatcher.hand_off(None)


@pytest.fixture
def runtime(settings, worker):
    rt = runtime_for_tests(settings)
    yield rt
    rt.close()


def runtime_for_tests(settings: Settings):
    """A web process's runtime; on the RQ pass (ask for the ``worker`` fixture) its mail
    goes out through the dispatcher process, as in production, and the test waits for
    it."""
    rt = build_runtime(settings)
    if SERVICES:
        rt.dispatcher.hand_off(left_and_awaited(rt))
    return rt


def left_and_awaited(runtime, timeout: float = 30.0):
    """The production hand-off (left to the dispatcher process), then a wait until it
    has tried each row once: tests read the mail a request promised."""
    from sqlalchemy import select

    from signflow.core.models import OutboxMessage

    def hand_off(refs) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with runtime.sessions() as session:
                waiting = session.scalar(select(OutboxMessage.id).where(
                    OutboxMessage.ref.in_(list(refs)), OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.attempts == 0).limit(1))
            if waiting is None:
                return
            time.sleep(0.02)
        raise AssertionError(f"the dispatcher did not deliver {list(refs)} in {timeout:g} s")

    return hand_off


@pytest.fixture
def app(settings, runtime):
    return create_app(settings, runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def make_user(runtime, email: str, role: str = "secretariat", org: str = "Familjen Helsingborg"):
    with session_scope(runtime.sessions) as session:
        user = add_user(session, email, role, name=email.split("@")[0], organisation=org)
        return issue_token(session, user, 30)


@pytest.fixture
def token(runtime) -> str:
    return make_user(runtime, f"sekretariat-{uuid.uuid4().hex[:6]}@example.se")


@pytest.fixture
def auth(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def protocol_pdf() -> bytes:
    return sample_protocol()


def signers_spec(tag: str | None = None) -> list[dict]:
    tag = tag or uuid.uuid4().hex[:6]
    return [
        {"name": "Mikael Johansson", "email": f"sek-{tag}@example.se", "role": "sekreterare",
         "organisation": "Familjen Helsingborg", "title": "Tf sekretariatschef"},
        {"name": "Ardiana Demjaha", "email": f"just-{tag}@example.se", "role": "justerare",
         "organisation": "Örkelljunga kommun", "title": "Kommundirektör"},
        {"name": "Carina Leffler", "email": f"ordf-{tag}@example.se", "role": "chair",
         "organisation": "Helsingborgs stad", "title": "Kommundirektör"},
    ]


def create_round(client, auth, pdf: bytes, *, signers=None, **extra):
    spec = {"title": "Protokoll nr 2 2026", "language": "sv", "signers": signers or signers_spec()}
    spec.update(extra)
    return client.post("/api/v1/rounds", headers=auth, data={
        "round": json.dumps(spec), "document": (io.BytesIO(pdf), "protokoll.pdf")})


def invited_persona(runtime, order_ref: str):
    """The simulator person named like the signer whose order *order_ref* is."""
    from sqlalchemy import select

    from signflow.adapters.bankid_sim import PERSONAS
    from signflow.core.models import Signer

    with runtime.sessions() as session:
        name = session.scalar(select(Signer.name).where(Signer.pending_order_ref == order_ref))
    return next((p for p in PERSONAS if p.name == name), None)


def approve_with(runtime, persona=None):
    """Approve on the simulator as *persona*, by default as the invited person."""
    sim = runtime.simulator

    def approve(order_ref: str) -> None:
        sim.open(order_ref)
        sim.approve(order_ref, persona or invited_persona(runtime, order_ref))

    return approve


def wait_for_status(client, auth, round_id: str, status: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
        if body["status"] == status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"round stayed {body.get('status')}, wanted {status}")


def wait_for_mail(settings, wanted, count: int = 1, timeout: float = 30.0) -> list[dict]:
    """The outbox's mails for which *wanted* holds, once there are *count* of them.

    Mail goes out after the commit that asked for it (a job on the RQ pass), so a
    round can read `completed` a moment before its mails are written.
    """
    deadline = time.monotonic() + timeout
    while True:
        mails = [json.loads(p.read_text(encoding="utf-8"))
                 for p in sorted((settings.data_dir / "outbox").glob("*.json"))]
        found = [m for m in mails if wanted(m)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def sign_all(client, runtime, settings, signers) -> None:
    links = links_in_outbox(settings.data_dir / "outbox")
    for s in signers:
        result = sign_over_http(client, links[s["email"]], approve_with(runtime))
        assert result["status"] == "complete", result


@pytest.fixture
def completed_round(client, auth, runtime, settings, protocol_pdf):
    """A whole round, signed by all three, as the API returns it, and its PDF."""
    signers = signers_spec()
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201, resp.get_json()
    round_id = resp.get_json()["id"]
    sign_all(client, runtime, settings, signers)
    body = wait_for_status(client, auth, round_id, "completed")
    pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    return body, pdf


@dataclass(frozen=True)
class DemoRun:
    pdf: bytes
    stdout: str
    env: dict[str, str]
    path: Path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, keys_dir, base_url) -> DemoRun:
    """`signflow demo`, run once as a user would, in a process of its own."""
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo.pdf"
    env = {"PATH": "/usr/bin:/bin", "SIGNFLOW_KEYS_DIR": str(keys_dir),
           "SIGNFLOW_BASE_URL": base_url, "SIGNFLOW_DATA_DIR": str(tmp / "data")}
    proc = subprocess.run([sys.executable, "-m", "signflow.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return DemoRun(out.read_bytes(), proc.stdout, env, out)


@dataclass
class LiveApp:
    url: str
    runtime: object
    settings: Settings


@pytest.fixture(scope="session")
def live_app(base_url, keys_dir, tmp_path_factory):
    """The app on a real socket at the base URL the certificates name (CRLs, TSA, browser)."""
    from werkzeug.serving import make_server

    data = tmp_path_factory.mktemp("live")
    settings = Settings(data_dir=data, keys_dir=keys_dir, base_url=base_url, secret_key="x",
                        database_url=f"sqlite:///{data / 'live.sqlite3'}", dev_mode=True)
    upgrade(settings)
    rt = build_runtime(settings)
    port = int(base_url.rsplit(":", 1)[1])
    server = make_server("127.0.0.1", port, create_app(settings, rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveApp(base_url, rt, settings)
    server.shutdown()
    rt.close()


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium for a module's browser tests."""
    from tests.browser_kit import ARGS, CHROMIUM

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("LOUD SKIP: playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("LOUD SKIP: Chromium is not installed (make test installs it with apt "
                    "where it can)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def live_server(live_app) -> str:
    return live_app.url


def tamper(pdf: bytes) -> bytes:
    """Change one byte that every signature covers: the first page's height."""
    at = pdf.index(b"/MediaBox [ 0 0 595 842 ]") + len(b"/MediaBox [ 0 0 595 84")
    changed = bytearray(pdf)
    changed[at] = ord("3")
    return bytes(changed)


@contextmanager
def append_only_lifted(engine):
    """Lift the audit trail's append-only triggers, as someone with the database's
    owner rights could, to show that the chain still tells (and put them back)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            if sqlite:
                for change in ("UPDATE", "DELETE"):
                    conn.execute(text(
                        f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{change.lower()} "
                        f"BEFORE {change} ON "
                        "audit_events BEGIN SELECT RAISE(ABORT, 'audit events are "
                        "append-only'); END"))
            else:
                conn.execute(text(
                    "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
