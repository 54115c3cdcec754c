"""The command line: keys, users, audit, demo."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DatabaseError

from signflow import cli
from signflow.core.models import AuditEvent
from signflow.pdf.pki import keys_present


def env_for(monkeypatch, settings):
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))


def test_keys_init_names_the_root_for_the_organisation_not_for_development(tmp_path,
                                                                            monkeypatch):
    """The root keys init makes serves production (every signer's certificate chains
    to it, auditors import it): it was "signflow Development Root CA"."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SIGNFLOW_CA_ORGANISATION", "Familjen Helsingborg")
    assert cli.main(["keys", "init"]) == 0
    for stem in ("root-ca", "signer-ca"):
        name = x509.load_pem_x509_certificate(
            (tmp_path / "k" / f"{stem}.pem").read_bytes()).subject
        assert name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
            "Familjen Helsingborg"
        assert "Development" not in name.rfc4514_string(), name


def test_keys_init_is_idempotent(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path / "d"))
    assert cli.main(["keys", "init"]) == 0
    assert keys_present(tmp_path / "k")
    before = (tmp_path / "k" / "root-ca.pem").read_bytes()
    assert cli.main(["keys", "init"]) == 0
    assert (tmp_path / "k" / "root-ca.pem").read_bytes() == before
    out = capsys.readouterr()
    assert "kept existing" in out.out and "note:" not in out.err
    assert oct((tmp_path / "k" / "seal.key").stat().st_mode)[-3:] == "600"
    # a base URL changed after the keys were made: said, at keys init and at every start
    monkeypatch.setenv("SIGNFLOW_BASE_URL", "https://signering.kommun.se")
    assert cli.main(["keys", "init"]) == 0
    assert ("note: these keys name http://127.0.0.1:5000/pki/ for their revocation lists, "
            "not SIGNFLOW_BASE_URL (https://signering.kommun.se)") in capsys.readouterr().err
    import logging

    from signflow.config import load_settings
    from signflow.runtime import build_runtime

    with caplog.at_level(logging.WARNING, logger="signflow.runtime"):
        build_runtime(load_settings(defaults={"dev_mode": True, "secret_key": "t"})).close()
    assert "name http://127.0.0.1:5000/pki/ for their revocation lists, but " \
        "SIGNFLOW_BASE_URL is https://signering.kommun.se" in caplog.text


def test_users_add_prints_token_last(settings, monkeypatch, capsys, client):
    env_for(monkeypatch, settings)
    assert cli.main(["users", "add", "ny@example.se", "--role", "auditor",
                     "--organisation", "Bjuvs kommun"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("sf_") and len(token) > 40
    resp = client.get("/api/v1/rounds", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert cli.main(["users", "add", "ny@example.se", "--role", "auditor"]) == 2
    assert "exists" in capsys.readouterr().err
    # the same organisation however it is spelt: one secretariat, not two
    assert cli.main(["users", "add", "tva@example.se", "--role", "secretariat",
                     "--organisation", "bjuvs KOMMUN"]) == 0
    assert capsys.readouterr().out.startswith("added tva@example.se (secretariat) to Bjuvs kommun")
    assert cli.main(["orgs", "list"]) == 0
    assert "Bjuvs kommun\t2 users\t0 rounds" in capsys.readouterr().out.splitlines()
    # a new token for a user who has one
    assert cli.main(["users", "token", "NY@example.se"]) == 0
    again = capsys.readouterr().out.strip().splitlines()[-1]
    assert again.startswith("sf_") and again != token
    assert client.get("/api/v1/rounds", headers={"Authorization": f"Bearer {again}"}
                      ).status_code == 200
    assert cli.main(["users", "token", "ingen@example.se"]) == 2
    assert "no user ingen@example.se" in capsys.readouterr().err


def test_audit_verify(settings, monkeypatch, capsys, completed_round, runtime):
    env_for(monkeypatch, settings)
    body, _ = completed_round
    assert cli.main(["audit", "verify", body["id"]]) == 0
    assert "intact" in capsys.readouterr().out
    from tests.conftest import append_only_lifted

    with append_only_lifted(runtime.engine), runtime.sessions() as s, s.begin():
        s.execute(update(AuditEvent).where(AuditEvent.round_id == body["id"],
                                           AuditEvent.seq == 2)
                  .values(data_json=json.dumps({"sha256": "0" * 64})))
    assert cli.main(["audit", "verify", body["id"]]) == 1
    assert "BROKEN" in capsys.readouterr().out
    with pytest.raises(DatabaseError, match="append-only"):  # refused again afterwards
        with runtime.sessions() as s, s.begin():
            s.execute(update(AuditEvent).where(AuditEvent.round_id == body["id"])
                      .values(actor="x"))
    assert cli.main(["audit", "verify", "nosuchround"]) == 2


def test_demo_writes_a_valid_pdf(demo_run):
    assert "round status: completed" in demo_run.stdout
    check = subprocess.run([sys.executable, "-m", "signflow.cli", "verify", str(demo_run.path),
                            "--json"], capture_output=True, text=True, timeout=120,
                           env=demo_run.env)
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["valid"] is True and report["indication"] == "TOTAL-PASSED"
    assert all(s["indication"] == "TOTAL-PASSED" for s in report["signatures"])


def test_worker_without_redis_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SIGNFLOW_REDIS_URL", raising=False)
    assert cli.main(["worker"]) == 2
    assert "SIGNFLOW_REDIS_URL" in capsys.readouterr().err


def test_a_database_that_cannot_be_used_is_one_line_without_the_password(
        tmp_path, monkeypatch, capsys):
    from tests.conftest import free_port

    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL",
                       f"postgresql+psycopg://u:hemligt@127.0.0.1:{free_port()}/x")
    assert cli.main(["users", "add", "a@kommun.se", "--role", "auditor"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("signflow: the database (SIGNFLOW_DATABASE_URL) cannot be used: ")
    assert len(err.splitlines()) == 1 and "hemligt" not in err
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", "postgres://u:hemligt@db/x")
    assert cli.main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert "SQLAlchemy cannot use a postgres:// URL" in err and "hemligt" not in err
    assert len(err.splitlines()) == 1


def test_a_file_that_cannot_be_written_is_one_line(demo_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(tmp_path / "no-keys"))
    code = cli.main(["verify", str(demo_run.path), "--pdf", str(tmp_path / "no" / "r.pdf")])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"signflow: No such file or directory: {tmp_path / 'no' / 'r.pdf'}"


def test_demo_refuses_an_output_it_cannot_write_before_it_starts(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "no" / "demo.pdf")]) == 2
    assert capsys.readouterr().err == \
        f"signflow: no directory {tmp_path / 'no'} to write demo.pdf in\n"


def test_background_processes_yield_the_cpu_to_the_web(tmp_path):
    """worker, dispatcher and scheduler lower their priority by SIGNFLOW_BACKGROUND_NICE
    (checked in a child: a process cannot raise it back)."""
    script = ("import os; from signflow.cli import lower_priority; "
              "from signflow.config import load_settings; before = os.nice(0); "
              "lower_priority(load_settings()); print(os.nice(0) - before)")
    for setting, step in (("", "10"), ("3", "3"), ("0", "0")):
        env = {**os.environ, "SIGNFLOW_DATA_DIR": str(tmp_path)}
        if setting:
            env["SIGNFLOW_BACKGROUND_NICE"] = setting
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, step), done.stderr


@pytest.mark.parametrize("command", ["worker", "dispatcher", "scheduler"])
def test_a_priority_out_of_range_is_refused_by_name(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIGNFLOW_REDIS_URL", "redis://127.0.0.1:1/0")  # never reached
    monkeypatch.setenv("SIGNFLOW_BACKGROUND_NICE", "25")
    before = os.nice(0)
    assert cli.main([command]) == 2
    assert "SIGNFLOW_BACKGROUND_NICE must be 0 to 19, not 25" in capsys.readouterr().err
    assert os.nice(0) == before


def test_bankid_simulator_command_over_tls(tmp_path, keys_dir):
    """`signflow bankid-simulator --tls`: HTTPS, and 401 without the RP certificate."""
    import time

    import requests as rq

    from signflow.adapters.bankid import BankIDClient
    from signflow.adapters.tls import client_session
    from signflow.core.ports import SignRequest
    from signflow.errors import ProviderError
    from tests.conftest import free_port

    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "SIGNFLOW_KEYS_DIR": str(keys),
           "SIGNFLOW_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.Popen([sys.executable, "-m", "signflow.cli", "bankid-simulator",
                             "--port", str(port), "--tls"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"https://localhost:{port}"
        ca = str(keys / "bankid-sim-ca.pem")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                rq.get(url + "/", verify=ca, timeout=1)
                break
            except rq.RequestException:
                time.sleep(0.2)
        request = SignRequest(end_user_ip="192.0.2.1", visible_text="x",
                              non_visible_data=b"\0" * 32)
        bare = BankIDClient(url, session=client_session(ca=ca))
        with pytest.raises(ProviderError) as err:
            bare.start_sign(request)
        assert err.value.fields["status"] == 401
        rp = BankIDClient(url, session=client_session(
            cert=str(keys / "bankid-rp.pem"), key=str(keys / "bankid-rp.key"), ca=ca))
        assert rp.start_sign(request).order_ref
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_blobs_sweep_removes_only_unreferenced_old_blobs(settings, monkeypatch, capsys,
                                                          runtime, client, auth, protocol_pdf):
    import os
    import time

    from tests.conftest import create_round

    env_for(monkeypatch, settings)
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")
    assert create_round(client, auth, protocol_pdf).status_code == 201
    orphan = runtime.services.blobs.put(b"left behind by a failed transaction")
    if settings.extra.get("blob_store", "file") == "file":  # age it past the grace period
        path = settings.data_dir / "documents" / orphan[:2] / orphan
        old = time.time() - 2 * 3600
        os.utime(path, (old, old))
    assert cli.main(["blobs", "sweep", "--older-than-minutes", "5"]) == 2
    assert "at least 10" in capsys.readouterr().err
    assert cli.main(["blobs", "sweep"]) == 0
    assert "1 orphaned document blob(s) removed" in capsys.readouterr().out
    with pytest.raises(Exception):  # noqa: B017 - NotFound from the store
        runtime.services.blobs.get(orphan)
