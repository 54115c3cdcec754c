"""Production is safe by default: no development machinery unless asked for, a start
that refuses on stand-ins nobody allowed, health and readiness, a database outage
that answers 503 in one log line, JSON logs with a request ID and no link token."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from signflow import cli, create_app, logs
from signflow.config import Settings, load_settings
from signflow.errors import ConfigError
from signflow.runtime import build_runtime
from signflow.web import health
from tests.conftest import ROOT, free_port

#: Everything production needs, each part left to its development stand-in.
STAND_INS = {"allow_dev_bankid": True, "allow_dev_tsa": True, "allow_dev_smtp": True,
             "allow_dev_seal": True}
TOKEN = "Abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE"  # the shape of a signing-link token


@pytest.fixture(autouse=True)
def _fresh_checks():
    health.forget_cached_checks()
    yield
    health.forget_cached_checks()


@pytest.fixture
def production(settings) -> Settings:
    """The test settings outside development mode, stand-ins explicitly allowed."""
    return settings.with_overrides(dev_mode=False, **STAND_INS)


@pytest.fixture
def production_client(production, worker):
    rt = build_runtime(production)
    yield create_app(production, rt).test_client()
    rt.close()


# --- development mode only when asked for ----------------------------------------------

def test_development_mode_is_off_unless_asked_for():
    assert Settings().dev_mode is False
    assert load_settings({}).dev_mode is False
    assert load_settings({"SIGNFLOW_DEV_MODE": "true"}).dev_mode is True


def test_serve_asks_for_development_mode_unless_the_environment_says_false(monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    args = cli.build_parser().parse_args(["serve"])
    monkeypatch.delenv("SIGNFLOW_DEV_MODE", raising=False)
    assert cli._settings(args).dev_mode is True
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "false")
    assert cli._settings(args).dev_mode is False
    monkeypatch.delenv("SIGNFLOW_DEV_MODE")
    worker = cli.build_parser().parse_args(["worker"])
    assert cli._settings(worker).dev_mode is False


def test_no_development_machinery_outside_development_mode(production, worker):
    """Outbox page, Freja stand-in, dev TSA endpoint and the start page's dev links are
    gone; the BankID simulator's page is there only because ALLOW_DEV_BANKID chose it."""
    rt = build_runtime(production)
    try:
        client = create_app(production, rt).test_client()
        assert client.get("/dev/outbox").status_code == 404
        assert client.get("/freja-sim/").status_code == 404
        resp = client.post("/tsa", data=b"x", content_type="application/timestamp-query")
        assert resp.status_code == 404
        page = client.get("/").get_data(as_text=True)
        assert "/dev/outbox" not in page
        assert client.get("/bankid-sim/").status_code == 200  # the staging demo signs here
    finally:
        rt.close()
    configured = production.with_overrides(bankid_url="https://appapi2.test.bankid.com")
    rt = build_runtime(configured)
    try:  # a real BankID URL: no simulator page at all
        assert create_app(configured, rt).test_client().get("/bankid-sim/").status_code == 404
    finally:
        rt.close()


def test_the_dev_tsa_answers_in_development_mode(client):
    resp = client.post("/tsa", data=b"x", content_type="application/timestamp-query")
    assert resp.status_code == 400  # reached the TSA, which refuses garbage


def test_the_dev_tsa_answers_a_request_with_a_token_that_validates(client, runtime):
    """The development TSA (and the fault tests' TSA, the same code) answers RFC 3161:
    granted, the request's nonce echoed, the imprint it was asked for, signed by the
    dev TSA under the service root; other digests get pyHanko's own answer."""
    import asyncio
    import hashlib
    import secrets

    from asn1crypto import algos, tsp
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    from signflow.pdf.keys import asn1_cert

    context = ValidationContext(trust_roots=[asn1_cert(runtime.pki.root.cert)],
                                allow_fetching=False, revocation_mode="soft-fail")
    for algorithm in ("sha256", "sha512"):
        digest, nonce = hashlib.new(algorithm, b"protokoll").digest(), secrets.randbits(62)
        req = tsp.TimeStampReq({
            "version": 1, "nonce": nonce, "cert_req": True,
            "message_imprint": {"hash_algorithm": algos.DigestAlgorithm(
                {"algorithm": algorithm}), "hashed_message": digest}})
        resp = client.post("/tsa", data=req.dump(), content_type="application/timestamp-query")
        assert resp.status_code == 200 and resp.mimetype == "application/timestamp-reply"
        answer = tsp.TimeStampResp.load(resp.data)
        assert answer["status"]["status"].native == "granted"
        signed = answer["time_stamp_token"]["content"]
        info = signed["encap_content_info"]["content"].parsed
        assert info["nonce"].native == nonce
        assert info["message_imprint"]["hashed_message"].native == digest
        status = asyncio.run(validate_tst_signed_data(
            signed, context, lambda a, d=digest, want=algorithm: d if a == want else b""))
        assert status["intact"] and status["valid"], status


# --- start-up refuses in production on stand-ins nobody allowed --------------------------

def test_start_up_refuses_naming_every_missing_setting(settings):
    bare = settings.with_overrides(dev_mode=False)
    with pytest.raises(ConfigError) as err:
        build_runtime(bare)
    message = err.value.message
    for name in ("SIGNFLOW_BANKID_URL", "SIGNFLOW_BANKID_CERT", "SIGNFLOW_BANKID_CA",
                 "SIGNFLOW_TSA_URL",
                 "SIGNFLOW_SMTP_URL", "SIGNFLOW_SEAL_CERT", "SIGNFLOW_SEAL_KEY",
                 "SIGNFLOW_SEAL_PKCS11_MODULE", "SIGNFLOW_ALLOW_DEV_BANKID",
                 "SIGNFLOW_ALLOW_DEV_TSA", "SIGNFLOW_ALLOW_DEV_SMTP", "SIGNFLOW_ALLOW_DEV_SEAL"):
        assert name in message
    with pytest.raises(ConfigError):
        create_app(bare)


def test_each_allowance_lets_only_its_own_part_through(settings, tmp_path):
    (tmp_path / "seal.p12").write_bytes(b"")
    allowed = settings.with_overrides(dev_mode=False, allow_dev_tsa=True,
                                      smtp_url="smtp://127.0.0.1:1",
                                      seal_key=str(tmp_path / "seal.p12"))
    with pytest.raises(ConfigError) as err:
        build_runtime(allowed)
    message = err.value.message
    assert "SIGNFLOW_BANKID_URL" in message
    for name in ("TSA_URL", "SMTP_URL", "SEAL_"):
        assert f"SIGNFLOW_{name}" not in message


def test_bankid_over_https_needs_its_server_ca_pinned(settings, tmp_path):
    (tmp_path / "rp.p12").write_bytes(b"")
    real = settings.with_overrides(dev_mode=False, allow_dev_tsa=True, allow_dev_smtp=True,
                                   allow_dev_seal=True, bankid_url="https://appapi2.bankid.com",
                                   bankid_cert=str(tmp_path / "rp.p12"))
    with pytest.raises(ConfigError) as err:
        build_runtime(real)
    assert "BankID needs SIGNFLOW_BANKID_CA (or SIGNFLOW_ALLOW_DEV_BANKID=true)" in \
        err.value.message


def test_values_that_cannot_work_are_refused_at_start_each_by_its_setting(settings, tmp_path):
    wrong = settings.with_overrides(
        base_url="signering.kommun.se", tsa_url="not-a-url", redis_url="default:hemligt@redis",
        trust_roots=str(tmp_path / "none.pem"), evidence_key=str(tmp_path / "none.key"),
        workflows_dir=tmp_path / "no-workflows", proxy_hops=-1)
    with pytest.raises(ConfigError) as err:
        build_runtime(wrong)
    message = err.value.message
    assert message.startswith("refusing to start: ")  # development mode: no gaps, bad values
    assert "SIGNFLOW_BASE_URL must be a http or https URL with a host" in message
    assert "SIGNFLOW_TSA_URL must be" in message and "SIGNFLOW_REDIS_URL must be" in message
    for name in ("TRUST_ROOTS", "EVIDENCE_KEY", "WORKFLOWS_DIR"):
        assert f"SIGNFLOW_{name} names {tmp_path}" in message
    assert "SIGNFLOW_PROXY_HOPS must not be negative" in message
    assert "hemligt" not in message and "not '…@redis'" in message  # a password is not shown
    gaps = settings.with_overrides(dev_mode=False, base_url="kommun.se")
    with pytest.raises(ConfigError) as err:  # both at once: nothing to find out one by one
        build_runtime(gaps)
    assert "SIGNFLOW_SMTP_URL" in err.value.message
    assert "Also: SIGNFLOW_BASE_URL must be" in err.value.message


def test_a_misspelled_setting_is_named_with_the_one_it_resembles(caplog):
    from signflow.config import misspelled

    settings = load_settings({"SIGNFLOW_DATAKEY": "x", "SIGNFLOW_EVIDENCE_CERT": "y",
                              "SIGNFLOW_MYID_URL": "https://myid.example"})
    assert misspelled(settings) == [
        "SIGNFLOW_DATAKEY is not a setting; did you mean SIGNFLOW_DATA_KEY?",
        "SIGNFLOW_EVIDENCE_CERT is not a setting; did you mean SIGNFLOW_EVIDENCE_CERTS?"]


def test_a_secret_comes_from_a_file_named_by_the_setting_with_file(tmp_path):
    """Docker and Kubernetes secrets: SIGNFLOW_X_FILE, so that the secret is not in
    the environment that `docker inspect` and /proc/<pid>/environ show."""
    from signflow.config import misspelled

    secret = tmp_path / "secret_key"
    secret.write_text("s3cr3t-from-a-file\n")
    settings = load_settings({"SIGNFLOW_SECRET_KEY_FILE": str(secret),
                              "SIGNFLOW_SEAL_PASSWORD_FILE": str(secret)})
    assert settings.secret_key == settings.seal_password == "s3cr3t-from-a-file"
    assert misspelled(settings) == []
    with pytest.raises(ConfigError, match="SIGNFLOW_SECRET_KEY and SIGNFLOW_SECRET_KEY_FILE "
                                          "are both set"):
        load_settings({"SIGNFLOW_SECRET_KEY": "x", "SIGNFLOW_SECRET_KEY_FILE": str(secret)})
    with pytest.raises(ConfigError, match="SIGNFLOW_DATA_KEY_FILE: cannot read .*missing"):
        load_settings({"SIGNFLOW_DATA_KEY_FILE": str(tmp_path / "missing")})


def test_the_worker_refuses_with_the_message_and_no_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIGNFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    for name in ("SIGNFLOW_DEV_MODE", "SIGNFLOW_TSA_URL", "SIGNFLOW_BANKID_URL"):
        monkeypatch.delenv(name, raising=False)
    root = _root_logging()
    try:
        assert cli.main(["worker"]) != 0
    finally:
        _restore_logging(root)
    err = capsys.readouterr().err
    assert "refusing to start" in err and "SIGNFLOW_TSA_URL" in err
    assert "Traceback" not in err
    refusal = next(line for line in err.splitlines() if "refusing to start" in line)
    assert json.loads(refusal)["level"] == "CRITICAL"  # the worker logs JSON


def test_gunicorn_stops_with_one_clear_message(tmp_path):
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("LOUD SKIP: gunicorn is not installed (pip install -e '.[prod]')")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "SIGNFLOW_DATA_DIR": str(tmp_path / "d"), "SIGNFLOW_KEYS_DIR": str(tmp_path / "k")}
    proc = subprocess.run([str(gunicorn), "--bind", "127.0.0.1:0", "--workers", "1",
                           "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    # one JSON line, as every other line of wsgi:app, for the log pipeline to keep
    refusals = [json.loads(line) for line in proc.stderr.splitlines()
                if line.startswith("{") and "refusing to start" in line]
    assert refusals and refusals[0]["level"] == "CRITICAL", proc.stderr
    assert "SIGNFLOW_SMTP_URL" in refusals[0]["message"]
    assert "Traceback" not in proc.stderr
    assert "App failed to load" in proc.stderr


# --- health and readiness ----------------------------------------------------------------

def test_healthz_and_readyz_when_all_is_well(client):
    assert client.get("/healthz").get_json() == {"ok": True}
    resp = client.get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 200, body
    assert body["ready"] is True and body["failing"] == []
    assert set(body["checks"]) == {"database", "queue", "outbox", "keys", "tsa"}
    assert "backlog" in body["checks"]["queue"] or body["checks"]["queue"]["mode"] == "in-process"


def test_readyz_names_a_missing_redis_and_an_unreachable_tsa(settings, worker):
    broken = settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                                     tsa_url=f"http://127.0.0.1:{free_port()}/tsa")
    rt = build_runtime(broken)
    try:
        resp = create_app(broken, rt).test_client().get("/readyz")
    finally:
        rt.close()
    body = resp.get_json()
    assert resp.status_code == 503
    assert sorted(body["failing"]) == ["queue", "tsa"]
    assert body["checks"]["database"]["ok"] is True


def test_the_tsa_is_asked_at_most_every_thirty_seconds(settings, worker):
    hits: list[str] = []

    class TSA(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(405)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), TSA)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with_tsa = settings.with_overrides(tsa_url=f"http://127.0.0.1:{server.server_port}/tsa")
    rt = build_runtime(with_tsa)
    try:
        client = create_app(with_tsa, rt).test_client()
        assert client.get("/readyz").status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        rt.close()
        server.shutdown()
    assert hits == ["/tsa"]


# --- a database outage: 503, Retry-After, one log line -----------------------------------

@pytest.fixture
def no_database(settings):
    """The app on a PostgreSQL URL where nothing listens."""
    down = settings.with_overrides(
        database_url=f"postgresql+psycopg://signflow@127.0.0.1:{free_port()}/signflow",
        redis_url="")
    rt = build_runtime(down)
    yield create_app(down, rt).test_client()
    rt.close()


def test_a_database_outage_answers_503_in_one_log_line(no_database, caplog):
    caplog.set_level(logging.INFO)
    resp = no_database.get("/api/v1/rounds", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.get_json()["error"]["code"] == "unavailable"
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert problems[0].exc_info is None and "database unavailable" in problems[0].getMessage()


def test_a_database_outage_shows_people_the_error_page(no_database, caplog):
    resp = no_database.get(f"/sign/{TOKEN}", headers={"Accept": "text/html"})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.mimetype == "text/html"


def test_health_stays_alive_and_readiness_names_the_database(no_database):
    assert no_database.get("/healthz").status_code == 200
    resp = no_database.get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["failing"] == ["database"]


# --- JSON logs with a request ID, never a link token --------------------------------------

def _root_logging():
    root = logging.getLogger()
    return root.handlers[:], root.level


def _restore_logging(saved) -> None:
    root = logging.getLogger()
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.fixture
def json_logs(settings):
    stream = io.StringIO()
    saved = _root_logging()
    logs.configure(settings.with_overrides(log_format="json"))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logs._SignflowHandler):
            handler.setStream(stream)
    yield stream
    _restore_logging(saved)


def test_a_request_logs_one_json_line_with_its_id_and_no_token(client, json_logs):
    resp = client.get(f"/sign/{TOKEN}", headers={"X-Request-ID": "req-42_abc"})
    assert resp.headers["X-Request-ID"] == "req-42_abc"
    text = json_logs.getvalue()
    assert TOKEN not in text
    lines = [json.loads(line) for line in text.splitlines()]
    request_line = next(line for line in lines if line["logger"] == "signflow.request")
    assert request_line["request_id"] == "req-42_abc"
    assert request_line["method"] == "GET" and request_line["path"] == "/sign/[link]"
    assert request_line["status"] == resp.status_code
    assert request_line["time"].endswith("Z") and request_line["level"] == "INFO"


def test_an_unexpected_error_is_one_json_line_without_the_token(json_logs):
    log = logging.getLogger("signflow.test")
    try:
        raise RuntimeError(f"failed on /sign/{TOKEN}/bankid")
    except RuntimeError:
        log.exception("unexpected error on GET /sign/%s/bankid", TOKEN)
    (line,) = json_logs.getvalue().splitlines()
    assert TOKEN not in line
    record = json.loads(line)
    assert record["message"] == "unexpected error on GET /sign/[link]/bankid"
    assert "RuntimeError" in record["exc"]


def test_a_job_s_log_lines_carry_its_id_in_the_worker(json_logs):
    from types import SimpleNamespace

    from rq import job as rq_job

    token = rq_job._current_job.set(SimpleNamespace(id="job-7"))  # as RQ's worker does
    try:
        logging.getLogger("signflow.jobs").warning("TSA slow")
    finally:
        rq_job._current_job.reset(token)
    (line,) = json_logs.getvalue().splitlines()
    assert json.loads(line)["request_id"] == "job-7"


def test_an_insane_request_id_is_replaced(client):
    for bad in ("x" * 65, "no spaces", "ünïcode", ""):
        given = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert given != bad and logs.SANE_REQUEST_ID.fullmatch(given)


def test_serve_logs_text_unless_asked_for_json(settings):
    saved = _root_logging()
    try:
        assert logs.configure(settings, default="text") == "text"
        assert logs.configure(settings.with_overrides(log_format="json"),
                              default="text") == "json"
        with pytest.raises(ConfigError):
            logs.configure(settings.with_overrides(log_format="xml"))
    finally:
        _restore_logging(saved)


def test_the_env_example_lists_every_setting_compose_passes():
    compose = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    import re

    passed = set(re.findall(r"\$\{(SIGNFLOW_[A-Z0-9_]+)", compose))
    listed = set(re.findall(r"^#?\s*(SIGNFLOW_[A-Z0-9_]+)=", example, re.MULTILINE))
    assert passed and passed <= listed, passed - listed
    assert os.path.exists(ROOT / "Dockerfile")
    assert "USER " in (ROOT / "Dockerfile").read_text()


# --- Prometheus metrics ------------------------------------------------------------------

def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_rounds_by_status_and_time_verification(client, auth, protocol_pdf):
    pytest.importorskip("prometheus_client", reason="LOUD SKIP: prometheus-client missing")
    from tests.conftest import create_round

    before = client.get("/metrics").get_data(as_text=True)
    assert create_round(client, auth, protocol_pdf).status_code == 201
    client.post("/api/v1/verify", data={"document": (io.BytesIO(protocol_pdf), "p.pdf")})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert _sample(text, "signflow_rounds", status="pending") >= 1
    assert (_sample(text, "signflow_verification_seconds_count")
            == _sample(before, "signflow_verification_seconds_count") + 1)
    assert _sample(text, "signflow_request_seconds_count", endpoint="api.create_round",
                   method="POST") >= 1


def test_identity_provider_errors_are_counted(runtime):
    pytest.importorskip("prometheus_client", reason="LOUD SKIP: prometheus-client missing")
    from prometheus_client import REGISTRY

    from signflow.errors import ProviderError

    def errors() -> float:
        return sum(sample.value for family in REGISTRY.collect() for sample in family.samples
                   if sample.name == "signflow_identity_provider_errors_total"
                   and sample.labels["provider"] == "bankid")

    seen = errors()
    with pytest.raises(ProviderError):
        runtime.services.providers["bankid"].collect("no-such-order")
    assert errors() == seen + 1


def test_jobs_are_timed_by_name_and_outcome(runtime):
    pytest.importorskip("prometheus_client", reason="LOUD SKIP: prometheus-client missing")
    from prometheus_client import REGISTRY

    from signflow.runtime import run_job

    def runs() -> float:
        return REGISTRY.get_sample_value("signflow_job_seconds_count",
                                         {"job": "expire_due", "outcome": "ok"}) or 0.0

    seen = runs()
    run_job(runtime, "expire_due", ())
    assert runs() == seen + 1


def test_gunicorns_own_lines_take_the_format_signflow_s_lines_take():
    """gunicorn.conf.py hands gunicorn this logging config (tests/test_compose.py
    shows it at work): JSON, or text when SIGNFLOW_LOG_FORMAT says so."""
    import logging.config

    from signflow.logs import JsonFormatter, TextFormatter, gunicorn_logging

    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        for fmt, formatter in (("", JsonFormatter), ("json", JsonFormatter),
                               ("TEXT", TextFormatter), ("yaml", JsonFormatter)):
            config = gunicorn_logging(fmt)
            assert config["formatters"]["signflow"]["()"].endswith(formatter.__name__)
            logging.config.dictConfig(config)  # gunicorn does no more than this with it
            handler = logging.getLogger("gunicorn.error").handlers[0]
            assert type(handler.formatter) is formatter
            assert not logging.getLogger("gunicorn.error").propagate
    finally:
        for name in ("gunicorn.error", "gunicorn.access"):
            logging.getLogger(name).handlers.clear()
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
