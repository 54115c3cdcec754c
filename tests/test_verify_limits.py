"""The public verification is bounded: size (413), cost (422), rate (429) and
concurrency (503), each refused at once with a reason, 429 and 503 with
``Retry-After``; and a flood of heavy files from several clients, against
gunicorn started as the Dockerfile starts it, leaves ``/healthz`` and an
ordinary verification answering."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
import requests
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from sqlalchemy import func, select

from signflow import create_app
from signflow.config import Settings
from signflow.core.models import AuditEvent, Document, Round
from signflow.errors import Busy, ConfigError
from signflow.migrate import upgrade
from signflow.pdf import isolate
from signflow.pdf.cost import Cost, estimate
from signflow.pdf.keys import simple_signer
from signflow.pdf.pages import A4, Text, add_text_page
from signflow.pdf.pki import load_pki
from signflow.web.limits import LIGHT_COST, Slots, ThreadSafeMemory
from tests.conftest import ROOT, free_port
from tests.test_verify_page import post_verify, text_of

#: A Redis database of these tests' own (the suite's queue uses another).
LIMITS_REDIS = os.environ.get("SIGNFLOW_TEST_LIMITS_REDIS_URL", "redis://127.0.0.1:6379/7")


def signed_pdf(keys_dir: Path, pages: int, signatures: int) -> bytes:
    """A *pages*-page document sealed *signatures* times, each in a field of its own."""
    pdf = pikepdf.new()
    for i in range(pages):
        add_text_page(pdf, [Text(60, A4[1] - 80, f"Sida {i + 1}: Mötet beslutar.")])
    buf = io.BytesIO()
    pdf.save(buf)
    data = buf.getvalue()
    pki = load_pki(keys_dir)
    seal = simple_signer(pki.seal, [pki.root.cert])
    for n in range(signatures):
        meta = signers.PdfSignatureMetadata(field_name=f"Underskrift{n + 1}", md_algorithm="sha256")
        data = signers.PdfSigner(meta, seal).sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(data))).getvalue()
    return data


@pytest.fixture(scope="module")
def small(keys_dir) -> bytes:
    """An ordinary file: two pages, one signature."""
    return signed_pdf(keys_dir, 2, 1)


@pytest.fixture(scope="module")
def heavy(keys_dir) -> bytes:
    """1000 pages, four signatures: 4000 pages × signatures, about 2 s to verify here."""
    return signed_pdf(keys_dir, 1000, 4)


@pytest.fixture
def bounded(settings, runtime) -> Callable[..., object]:
    """An app with the verification bounds given, on the test's database and runtime."""
    def make(**bounds: object):
        return create_app(settings.with_overrides(**bounds), runtime)
    return make


@pytest.fixture
def tasks(monkeypatch) -> list[str]:
    """The sandbox tasks requests run (the real sandbox: this only writes them down)."""
    ran: list[str] = []
    real = isolate.run

    def run(task, data, limits=None, **kwargs):
        ran.append(task)
        return real(task, data, limits, **kwargs)

    monkeypatch.setattr(isolate, "run", run)
    return ran


def stored(runtime) -> tuple[int, ...]:
    with runtime.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (Round, Document, AuditEvent))


def upload(client, data: bytes, **kwargs):
    return client.post("/api/v1/verify", data={"document": (io.BytesIO(data), "p.pdf")},
                       **kwargs)


def assert_idle(app) -> None:
    slots = app.extensions["signflow.verify"].slots
    assert (slots.busy, slots.heavy) == (0, 0), "a refused request left a slot taken"


# --- the estimate --------------------------------------------------------------------------

def test_the_estimate_counts_pages_and_signatures_as_the_verification_sees_them(small, heavy,
                                                                               protocol_pdf):
    assert estimate(small) == Cost(pages=2, signatures=1)
    assert estimate(heavy) == Cost(pages=1000, signatures=4)
    assert estimate(heavy).units == 4000
    assert estimate(protocol_pdf) == Cost(pages=2, signatures=0)
    assert estimate(b"%PDF-1.7 nothing else") is None  # the verification says why, itself


# --- size ------------------------------------------------------------------------------------

def test_a_file_over_the_size_limit_is_refused_with_413_before_it_is_read(
        bounded, runtime, heavy, tasks):
    app = bounded(verify_max_bytes=100_000)
    before = stored(runtime)
    resp = upload(app.test_client(), heavy)
    assert resp.status_code == 413
    error = resp.get_json()["error"]
    assert error["code"] == "too_large" and error["max_bytes"] == 100_000
    assert "Retry-After" not in resp.headers  # asking again will not help
    assert tasks == [] and stored(runtime) == before
    assert_idle(app)


def test_the_page_says_the_size_limit_in_swedish(bounded, heavy):
    resp = post_verify(bounded(verify_max_bytes=2 * 1024 * 1024 - 1).test_client(),
                       heavy + b"\0" * (2 * 1024 * 1024))
    assert resp.status_code == 413
    assert "Filen är större än 1 MB." in text_of(resp)


# --- cost ------------------------------------------------------------------------------------

def test_a_file_over_the_cost_limit_is_refused_with_422_and_the_numbers_unverified(
        bounded, runtime, heavy, tasks):
    app = bounded(verify_max_cost=3999)
    before = stored(runtime)
    started = time.monotonic()
    resp = upload(app.test_client(), heavy)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "too_costly"
    assert (error["pages"], error["signatures"], error["cost"], error["limit"]) == \
        (1000, 4, 4000, 3999)
    assert "1000 pages and 4 signatures" in error["message"] and "3999" in error["message"]
    assert "Retry-After" not in resp.headers
    assert tasks == ["estimate"], "the verification itself must not run"
    assert time.monotonic() - started < 2.0
    assert stored(runtime) == before
    assert_idle(app)


def test_the_etsi_report_and_the_page_are_bounded_by_cost_too(bounded, heavy, tasks):
    app = bounded(verify_max_cost=3999)
    resp = app.test_client().post("/api/v1/verify?format=etsi",
                                  data={"document": (io.BytesIO(heavy), "p.pdf")})
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "too_costly"
    resp = post_verify(app.test_client(), heavy)
    assert resp.status_code == 422
    assert "Filen har 1000 sidor och 4 underskrifter. Tjänsten kontrollerar högst 3999 " \
           "sidor × underskrifter i en fil" in text_of(resp)
    english = post_verify(app.test_client(), heavy, lang="en")
    assert "The file has 1000 pages and 4 signatures." in text_of(english)
    assert tasks == ["estimate"] * 3


def test_a_file_within_the_limit_is_verified(bounded, small):
    resp = upload(bounded(verify_max_cost=2).test_client(), small)  # 2 pages × 1: at the limit
    assert resp.status_code == 200 and resp.get_json()["valid"] is True


def test_a_light_file_is_judged_in_two_processes_a_heavy_one_in_one(bounded, small, heavy,
                                                                    monkeypatch):
    """Two processes halve an ordinary protocol's wait; a large file keeps to one, so
    a flood of them holds no more than the slots say."""
    asked: list[int] = []
    real = isolate.run

    def run(task, data, limits=None, **kwargs):
        if task == "verify":
            asked.append(kwargs["workers"])
        return real(task, data, limits, **kwargs)

    monkeypatch.setattr(isolate, "run", run)
    client = bounded(verify_max_cost=10_000).test_client()
    assert upload(client, small).status_code == 200
    assert upload(client, heavy).status_code == 200
    assert asked == [2, 1]


# --- rate ------------------------------------------------------------------------------------

def test_a_client_over_the_rate_gets_429_with_retry_after_and_others_do_not(
        bounded, runtime, small, tasks):
    app = bounded(verify_rate="2/minute")
    client = app.test_client()
    assert [upload(client, small).status_code for _ in range(2)] == [200, 200]
    tasks.clear()
    before = stored(runtime)
    resp = upload(client, small)
    assert resp.status_code == 429
    error = resp.get_json()["error"]
    assert error["code"] == "rate_limited" and "2 per 1 minute" in error["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert error["retry_after"] == int(resp.headers["Retry-After"])
    assert tasks == [] and stored(runtime) == before  # refused before the upload was read
    other = upload(client, small, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200
    assert_idle(app)


def test_the_page_and_the_api_share_one_rate_and_the_page_says_when(bounded, small):
    client = bounded(verify_rate="1/minute").test_client()
    assert upload(client, small).status_code == 200
    resp = post_verify(client, small)
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert re.search(r"För många filer har kontrollerats från din adress\. "
                     r"Försök igen om \d+ sekunder\.", text_of(resp))
    assert client.get("/healthz").status_code == 200  # only verification is limited


def test_behind_a_proxy_each_client_address_has_its_own_rate(bounded, small):
    client = bounded(verify_rate="1/minute", proxy_hops=1).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # the proxy's own address
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert upload(client, small, headers=first, environ_base=proxy).status_code == 200
    assert upload(client, small, headers=first, environ_base=proxy).status_code == 429
    assert upload(client, small, headers={"X-Forwarded-For": "203.0.113.8"},
                  environ_base=proxy).status_code == 200


def test_counting_from_many_threads_starts_each_expiry_timer_once(monkeypatch):
    """gunicorn's threads count at once. ``limits``' own memory storage then starts
    one timer twice now and then (measured: 1 or 2 times in every run of this test
    against it), which put a traceback in the server log during the flood test."""
    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    failures: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", failures.append)
    monkeypatch.setattr(threading, "excepthook", failures.append)
    limiter = FixedWindowRateLimiter(ThreadSafeMemory())
    rate = parse("1000000/minute")

    def count(client: int) -> None:
        for i in range(1000):
            limiter.hit(rate, str(client))
            if i % 5 == 0:
                time.sleep(0.0105)  # let the 10 ms timer end, so that a new one is due

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        threads = [threading.Thread(target=count, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []


def test_the_fallback_counter_during_a_redis_outage_is_the_thread_safe_one(settings, runtime):
    app = create_app(settings.with_overrides(testing=False, redis_url=LIMITS_REDIS), runtime)
    assert isinstance(app.extensions["signflow.verify"].limiter._fallback_storage,
                      ThreadSafeMemory)


def test_a_bad_rate_setting_stops_the_start(settings, runtime):
    with pytest.raises(ConfigError, match="SIGNFLOW_VERIFY_RATE"):
        create_app(settings.with_overrides(verify_rate="thirty a minute"), runtime)
    with pytest.raises(ConfigError, match="SIGNFLOW_VERIFY_CONCURRENCY"):
        create_app(settings.with_overrides(verify_concurrency=0), runtime)


@pytest.fixture
def limits_redis():
    from redis import Redis

    conn = Redis.from_url(LIMITS_REDIS, socket_connect_timeout=1)
    try:
        conn.ping()
    except Exception:  # noqa: BLE001
        pytest.skip(f"LOUD SKIP: no Redis at {LIMITS_REDIS} for the shared rate limit")
    yield conn
    for key in conn.scan_iter("*signflow-verify*"):
        conn.delete(key)
    conn.close()


def test_with_redis_every_process_counts_the_same_rate(settings, runtime, small, limits_redis):
    """Production (not testing) with Redis: two apps, as two gunicorn workers, share one count."""
    production = settings.with_overrides(testing=False, redis_url=LIMITS_REDIS,
                                         verify_rate="1/minute")
    address = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"}
    one = create_app(production, runtime).test_client()
    two = create_app(production, runtime).test_client()
    assert upload(one, small, environ_base=address).status_code == 200
    resp = upload(two, small, environ_base=address)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert any(limits_redis.scan_iter("*signflow-verify*"))


def test_a_redis_outage_does_not_stop_verification(settings, runtime, small):
    dead = f"redis://127.0.0.1:{free_port()}/7"
    app = create_app(settings.with_overrides(testing=False, redis_url=dead,
                                             verify_rate="1/minute"), runtime)
    client = app.test_client()
    assert upload(client, small).status_code == 200
    assert upload(client, small).status_code == 429  # counted in memory meanwhile


# --- concurrency -----------------------------------------------------------------------------

def test_a_full_process_answers_503_at_once_with_retry_after(bounded, runtime, small, heavy,
                                                            tasks):
    app = bounded(verify_concurrency=2)
    client = app.test_client()
    slots = app.extensions["signflow.verify"].slots
    before = stored(runtime)
    with slots.taken(heavy=True):  # a large file being verified
        started = time.monotonic()
        resp = upload(client, heavy)
        assert time.monotonic() - started < 2.0  # no waiting for a slot
        assert resp.status_code == 503
        error = resp.get_json()["error"]
        assert error["code"] == "busy" and resp.headers["Retry-After"] == "5"
        assert tasks == ["estimate"]
        # an ordinary file still has its slot
        assert upload(client, small).status_code == 200
        with slots.taken(heavy=False):
            resp = upload(client, small)
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
            page = post_verify(client, small)
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert "Tjänsten kontrollerar så många filer den kan just nu. Försök igen om 5 " \
                   "sekunder." in text_of(page)
    assert stored(runtime) == before
    assert_idle(app)
    assert upload(client, small).status_code == 200


def test_a_failing_verification_gives_its_slot_back(bounded):
    app = bounded()
    resp = upload(app.test_client(), b"%PDF-1.7\n% nothing a reader can use\n")
    assert resp.status_code in (415, 422)
    assert_idle(app)


def test_slots_keep_one_for_ordinary_files():
    slots = Slots(3)
    with slots.taken(heavy=True), slots.taken(heavy=True):
        with pytest.raises(Busy):
            with slots.taken(heavy=True):
                pass
        with slots.taken(heavy=False):
            with pytest.raises(Busy):
                with slots.taken(heavy=False):
                    pass
    alone = Slots(1)  # one slot: whoever comes first
    with alone.taken(heavy=True), pytest.raises(Busy):
        with alone.taken(heavy=False):
            pass
    assert (slots.busy, slots.heavy, alone.busy) == (0, 0, 0)
    assert LIGHT_COST < 1000 * 4


# --- a flood, against gunicorn as the Dockerfile starts it -----------------------------------

def dockerfile_gunicorn() -> list[str]:
    """The Dockerfile's gunicorn options (workers, threads …), without its bind address."""
    line = re.search(r'^CMD \[(.*gunicorn.*)\]$', (ROOT / "Dockerfile").read_text(), re.M)
    assert line, "the Dockerfile starts gunicorn"
    args = [a.strip().strip('"') for a in line[1].split(",")]
    at = args.index("--bind")
    return args[1:at] + args[at + 2:]


@pytest.fixture
def gunicorn_server(keys_dir, base_url, tmp_path):
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("LOUD SKIP: gunicorn is not installed (pip install -e '.[prod]')")
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'flood.db'}")
    upgrade(settings)
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "SIGNFLOW_DATA_DIR": str(tmp_path), "SIGNFLOW_KEYS_DIR": str(keys_dir),
           "SIGNFLOW_DATABASE_URL": settings.database_url, "SIGNFLOW_BASE_URL": base_url,
           "SIGNFLOW_SECRET_KEY": "flood", "SIGNFLOW_PROXY_HOPS": "1",
           "SIGNFLOW_VERIFY_MAX_COST": "5000", "SIGNFLOW_VERIFY_RATE": "20/minute",
           "SIGNFLOW_ALLOW_DEV_BANKID": "true", "SIGNFLOW_ALLOW_DEV_TSA": "true",
           "SIGNFLOW_ALLOW_DEV_SMTP": "true", "SIGNFLOW_ALLOW_DEV_SEAL": "true",
           "SIGNFLOW_LOG_FORMAT": "text"}
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    command = [str(gunicorn), "--bind", f"127.0.0.1:{port}", *dockerfile_gunicorn()]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not come up"
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # not listening yet, or a worker still loading
                time.sleep(0.2)
        yield url, shlex.join(command[1:]), tmp_path / "gunicorn.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print((tmp_path / "gunicorn.log").read_text()[-2000:], file=sys.stderr)


def test_a_flood_of_heavy_files_leaves_health_and_ordinary_verification_answering(
        gunicorn_server, keys_dir, small, heavy):
    """Sixteen clients post large files (some over the cost limit) for ten seconds.

    Without the bounds (tried with the cost and rate unbounded and 100 slots)
    gunicorn's threads all verify and ``/healthz`` does not answer in 10 s.
    """
    url, command, log = gunicorn_server
    too_heavy = signed_pdf(keys_dir, 2000, 3)  # 6000 > SIGNFLOW_VERIFY_MAX_COST
    stop = threading.Event()
    answers: list[tuple[int, str | None, float]] = []
    failures: list[str] = []

    def attacker(n: int) -> None:
        session = requests.Session()
        session.headers["X-Forwarded-For"] = f"203.0.113.{n}"
        i = 0
        while not stop.is_set():
            pdf = too_heavy if i % 3 == 2 else heavy
            i += 1
            started = time.monotonic()
            try:
                resp = session.post(f"{url}/api/v1/verify", timeout=90,
                                    files={"document": ("p.pdf", pdf)})
            except requests.RequestException as exc:
                failures.append(f"attacker {n}: {type(exc).__name__}: {exc}")
                continue
            answers.append((resp.status_code, resp.headers.get("Retry-After"),
                            time.monotonic() - started))
            if resp.status_code in (429, 503):
                time.sleep(0.1)  # a flood ignores Retry-After; this spares the measuring CPU

    threads = [threading.Thread(target=attacker, args=(n,), daemon=True) for n in range(1, 17)]
    for thread in threads:
        thread.start()
    health: list[float] = []
    ordinary: list[tuple[int, bool, float]] = []
    try:
        time.sleep(1.0)  # the flood is on
        flood_ends = time.monotonic() + 10
        while time.monotonic() < flood_ends:
            started = time.monotonic()
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
            health.append(time.monotonic() - started)
            if len(health) % 8 == 0:  # about every two seconds, an auditor of their own
                started = time.monotonic()
                resp = requests.post(f"{url}/api/v1/verify", timeout=30,
                                     headers={"X-Forwarded-For": "198.51.100.1"},
                                     files={"document": ("protokoll.pdf", small)})
                ordinary.append((resp.status_code, resp.ok and resp.json()["valid"],
                                 time.monotonic() - started))
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    statuses = sorted({status for status, _, _ in answers})
    summary = (f"{command}: {len(answers)} heavy requests, statuses {statuses}, "
               f"health worst {max(health):.2f} s of {len(health)}, ordinary {ordinary}")
    print(summary)
    assert not failures, (len(failures), len(answers), sorted(set(failures))[:3])
    assert set(statuses) <= {200, 422, 429, 503}, summary  # never a 500, a 502 or a timeout
    assert 200 in statuses and 422 in statuses, summary
    assert {429, 503} & set(statuses), summary  # the bounds were reached
    for status, retry_after, _ in answers:
        if status in (429, 503):
            assert retry_after is not None and int(retry_after) >= 1, summary
    assert max(health) < 2.0, summary
    assert ordinary and all(status == 200 and valid and took < 10.0
                            for status, valid, took in ordinary), summary
    said = log.read_text()
    assert "Traceback" not in said and "WORKER TIMEOUT" not in said, said[-3000:]


def test_the_sandbox_answers_the_estimate_within_its_tight_limits(heavy):
    limits = isolate.DEFAULT_LIMITS["estimate"]
    assert limits.wall_seconds <= 5 and limits.cpu_seconds <= 5
    assert isolate.run("estimate", heavy) == Cost(pages=1000, signatures=4)
