"""The command line: keys, users, audit, demo."""

import json
import subprocess
import sys

from sqlalchemy import update

from signflow import cli
from signflow.core.models import AuditEvent
from signflow.pdf.pki import keys_present


def env_for(monkeypatch, settings):
    monkeypatch.setenv("SIGNFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(settings.keys_dir))


def test_keys_init_is_idempotent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGNFLOW_KEYS_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path / "d"))
    assert cli.main(["keys", "init"]) == 0
    assert keys_present(tmp_path / "k")
    before = (tmp_path / "k" / "root-ca.pem").read_bytes()
    assert cli.main(["keys", "init"]) == 0
    assert (tmp_path / "k" / "root-ca.pem").read_bytes() == before
    assert "kept existing" in capsys.readouterr().out
    assert oct((tmp_path / "k" / "seal.key").stat().st_mode)[-3:] == "600"


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


def test_audit_verify(settings, monkeypatch, capsys, completed_round, runtime):
    env_for(monkeypatch, settings)
    body, _ = completed_round
    assert cli.main(["audit", "verify", body["id"]]) == 0
    assert "intact" in capsys.readouterr().out
    with runtime.sessions() as s, s.begin():
        s.execute(update(AuditEvent).where(AuditEvent.round_id == body["id"],
                                           AuditEvent.seq == 2)
                  .values(data_json=json.dumps({"sha256": "0" * 64})))
    assert cli.main(["audit", "verify", body["id"]]) == 1
    assert "BROKEN" in capsys.readouterr().out
    assert cli.main(["audit", "verify", "nosuchround"]) == 2


def test_demo_writes_a_valid_pdf(demo_run):
    assert "round status: completed" in demo_run.stdout
    check = subprocess.run([sys.executable, "-m", "signflow.cli", "verify", str(demo_run.path),
                            "--json"], capture_output=True, text=True, timeout=120,
                           env=demo_run.env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["valid"] is True


def test_worker_without_redis_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGNFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SIGNFLOW_REDIS_URL", raising=False)
    assert cli.main(["worker"]) == 2
    assert "SIGNFLOW_REDIS_URL" in capsys.readouterr().err
